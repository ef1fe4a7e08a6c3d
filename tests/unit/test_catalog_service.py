"""CatalogService over the in-memory catalog: who may do what, versions, and the ERP outbox.

The HTTP answers, constraints and row-level security are tested on PostgreSQL in
tests/integration/test_products.py; here each rule is checked with exact state afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from uuid import UUID

import pytest

from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.ports import ProductQuery
from impextech.catalog.service.products import (
    CatalogService,
    NewProduct,
    ProductChanges,
    ProductNotFound,
)
from impextech.kernel.domain.errors import Forbidden, PreconditionFailed
from impextech.kernel.domain.money import Money
from impextech.kernel.domain.principal import Principal, Role
from tests.fakes.catalog import FakeCatalog
from tests.fakes.clock import T0, ManualClock

pytestmark = pytest.mark.anyio

ACME, GLOBEX = uuid.uuid4(), uuid.uuid4()
LATER = T0 + timedelta(minutes=5)


def who(role: Role, tenant: UUID = ACME) -> Principal:
    return Principal(tenant, uuid.uuid4(), role, uuid.uuid4())


SELLER, OTHER_SELLER, ADMIN, SHOPPER = (
    who(Role.SELLER),
    who(Role.SELLER),
    who(Role.ADMIN),
    who(Role.SHOPPER),
)
GLOBEX_ADMIN = who(Role.ADMIN, GLOBEX)
TENT = NewProduct("TENT-1", "Storm Tent", "For wind", "outdoor", Money(12900, "EUR"), 3)


class Rig:
    def __init__(self) -> None:
        self.catalog = FakeCatalog()
        self.clock = ManualClock()
        self.service = CatalogService(self.catalog.uow, self.clock)

    async def listed(self, by: Principal = SELLER, new: NewProduct = TENT) -> Product:
        product = await self.service.create(by, new)
        self.clock.advance(timedelta(minutes=5))
        return product

    def unchanged_since(self, products: dict[str, Product], announced: list[UUID]) -> bool:
        return (self.catalog.products(ACME), self.catalog.announced(ACME)) == (
            products,
            announced,
        )


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.mark.parametrize("role", [Role.SELLER, Role.ADMIN])
async def test_a_seller_or_admin_lists_a_product_and_the_erp_hears_of_it(
    rig: Rig, role: Role
) -> None:
    by = who(role)
    product = await rig.service.create(by, TENT)
    assert product == Product(
        id=product.id,
        tenant_id=ACME,
        seller_id=by.user_id,
        sku="TENT-1",
        name="Storm Tent",
        description="For wind",
        category="outdoor",
        price=Money(12900, "EUR"),
        stock=3,
        status=ProductStatus.ACTIVE,
        version=1,
        created_at=T0,
        updated_at=T0,
    )
    assert rig.catalog.products(ACME) == {"TENT-1": product}
    assert rig.catalog.announced(ACME) == [product.id]


async def test_a_shopper_lists_nothing_and_nothing_is_written(rig: Rig) -> None:
    with pytest.raises(Forbidden):
        await rig.service.create(SHOPPER, TENT)
    assert (rig.catalog.products(ACME), rig.catalog.announced(ACME), rig.catalog.commits) == (
        {},
        [],
        0,
    )


async def test_a_sku_in_use_is_refused_and_nothing_is_announced(rig: Rig) -> None:
    first = await rig.listed()
    with pytest.raises(SkuTaken):
        await rig.service.create(OTHER_SELLER, TENT)
    assert rig.unchanged_since({"TENT-1": first}, [first.id])
    other = await rig.service.create(GLOBEX_ADMIN, TENT)  # another marketplace may use it
    assert rig.catalog.products(GLOBEX) == {"TENT-1": other}


async def test_the_owner_updates_at_the_current_version_and_the_erp_hears_of_it(
    rig: Rig,
) -> None:
    tent = await rig.listed()
    changes = ProductChanges(name="Storm Tent II", price=Money(9900, "EUR"), stock=0)
    updated = await rig.service.update(SELLER, tent.id, 1, changes)
    expected = tent.changed(LATER, name="Storm Tent II", price=Money(9900, "EUR"), stock=0)
    assert updated == expected.changed(LATER, version=2)
    assert rig.catalog.products(ACME) == {"TENT-1": updated}
    assert rig.catalog.announced(ACME) == [tent.id, tent.id]


async def test_an_admin_updates_and_archives_any_product_of_the_marketplace(rig: Rig) -> None:
    tent = await rig.listed()
    renamed = await rig.service.update(ADMIN, tent.id, 1, ProductChanges(sku="TENT-9"))
    archived = await rig.service.archive(ADMIN, tent.id, 2)
    assert (renamed.sku, renamed.version, renamed.seller_id) == ("TENT-9", 2, SELLER.user_id)
    assert (archived.status, archived.version) == (ProductStatus.ARCHIVED, 3)
    assert rig.catalog.products(ACME) == {"TENT-9": archived}
    assert rig.catalog.announced(ACME) == [tent.id] * 3


async def test_a_stale_version_is_refused_and_nothing_is_written(rig: Rig) -> None:
    tent = await rig.listed()
    with pytest.raises(PreconditionFailed, match="at version 1, not 2"):
        await rig.service.update(SELLER, tent.id, 2, ProductChanges(name="Late"))
    with pytest.raises(PreconditionFailed):
        await rig.service.archive(SELLER, tent.id, 0)
    assert rig.unchanged_since({"TENT-1": tent}, [tent.id])


async def test_another_seller_may_not_change_a_product(rig: Rig) -> None:
    tent = await rig.listed()
    with pytest.raises(Forbidden):
        await rig.service.update(OTHER_SELLER, tent.id, 1, ProductChanges(name="Mine now"))
    with pytest.raises(Forbidden):
        await rig.service.archive(SHOPPER, tent.id, 1)
    assert rig.unchanged_since({"TENT-1": tent}, [tent.id])


async def test_an_archived_product_does_not_exist_for_those_who_may_not_manage_it(
    rig: Rig,
) -> None:
    tent = await rig.listed()
    archived = await rig.service.archive(SELLER, tent.id, 1)
    for viewer in (None, SHOPPER, OTHER_SELLER):
        with pytest.raises(ProductNotFound):
            await rig.service.get(ACME, tent.id, viewer)
    for viewer in (SELLER, ADMIN):
        assert await rig.service.get(ACME, tent.id, viewer) == archived
    with pytest.raises(ProductNotFound):  # not Forbidden: its existence is not revealed
        await rig.service.update(OTHER_SELLER, tent.id, 2, ProductChanges(name="x"))
    assert rig.unchanged_since({"TENT-1": archived}, [tent.id, tent.id])


async def test_a_product_of_another_marketplace_or_none_at_all_is_not_found(rig: Rig) -> None:
    tent = await rig.listed()
    with pytest.raises(ProductNotFound):
        await rig.service.get(GLOBEX, tent.id, None)
    with pytest.raises(ProductNotFound):
        await rig.service.update(GLOBEX_ADMIN, tent.id, 1, ProductChanges(name="x"))
    with pytest.raises(ProductNotFound):
        await rig.service.archive(ADMIN, uuid.uuid4(), 1)
    assert await rig.service.get(ACME, tent.id, None) == tent
    assert rig.unchanged_since({"TENT-1": tent}, [tent.id])


async def test_an_update_to_a_sku_in_use_is_refused_and_nothing_is_written(rig: Rig) -> None:
    tent = await rig.listed()
    lamp = await rig.listed(new=NewProduct("LAMP-1", "Lamp", "", "outdoor", Money(1, "EUR"), 1))
    with pytest.raises(SkuTaken):
        await rig.service.update(SELLER, lamp.id, 1, ProductChanges(sku="TENT-1"))
    assert rig.unchanged_since({"TENT-1": tent, "LAMP-1": lamp}, [tent.id, lamp.id])


async def test_of_two_racing_updates_at_one_version_exactly_one_wins(rig: Rig) -> None:
    tent = await rig.listed()
    outcomes = await asyncio.gather(
        rig.service.update(SELLER, tent.id, 1, ProductChanges(name="First")),
        rig.service.update(ADMIN, tent.id, 1, ProductChanges(name="Second")),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, Product)]
    losers = [o for o in outcomes if isinstance(o, PreconditionFailed)]
    assert (len(winners), len(losers)) == (1, 1)
    assert rig.catalog.products(ACME) == {"TENT-1": winners[0]}
    assert winners[0].version == 2
    assert rig.catalog.announced(ACME) == [tent.id, tent.id]


async def test_search_shows_the_tenants_active_products_to_anyone(rig: Rig) -> None:
    tent = await rig.listed()
    lamp = await rig.listed(new=NewProduct("LAMP-1", "Lamp", "", "outdoor", Money(1, "EUR"), 1))
    await rig.service.archive(SELLER, lamp.id, 1)
    await rig.service.create(GLOBEX_ADMIN, TENT)
    page = await rig.service.search(ACME, ProductQuery(category="outdoor"))
    assert (list(page.items), page.next_position) == ([tent], None)
