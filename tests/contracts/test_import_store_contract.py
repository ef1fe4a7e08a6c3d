"""ImportProductStore: SqlImportProductStore and FakeImportProductStore, one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import ProductStatus
from impextech.kernel.domain.money import Money
from tests.contracts.rigs import SIDES, CatalogRig, add, catalog_rig, product, stored
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[CatalogRig]:
    async with catalog_rig(request, request.param) as made:
        yield made


async def test_lock_by_sku_finds_the_tenants_products_with_those_skus(rig: CatalogRig) -> None:
    tent, lamp = product(rig.acme, "TENT-1"), product(rig.acme, "LAMP-1")
    await add(rig, tent, lamp)
    await add(rig, product(rig.globex, "PAN-1", seller_id=rig.globex.seller))
    async with rig.import_uow(rig.acme.tenant_id) as uow:
        found = await uow.products.lock_by_sku(["TENT-1", "PAN-1", "NEW-1"])
    assert found == {"TENT-1": tent}


async def test_inserted_and_updated_rows_commit_together_or_not_at_all(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    later = T0 + timedelta(hours=1)
    changed = replace(
        tent,
        name="Storm Tent",
        description="Wind",
        category="outdoor",
        price=Money(100, "USD"),
        stock=0,
        version=2,
        updated_at=later,
    )
    new = [product(rig.acme, "B-1"), product(rig.acme, "A-1")]
    async with rig.import_uow(rig.acme.tenant_id) as uow:
        await uow.products.lock_by_sku(["TENT-1"])
        await uow.products.insert(new)
        await uow.products.update([changed])
    assert await stored(rig, rig.acme, new[0].id) is None
    assert await stored(rig, rig.acme, tent.id) == tent
    async with rig.import_uow(rig.acme.tenant_id) as uow:
        await uow.products.lock_by_sku(["TENT-1"])
        await uow.products.insert(new)
        # Only what an import row carries changes: not the SKU, the status or the owner.
        await uow.products.update(
            [
                replace(
                    changed, sku="OTHER", status=ProductStatus.ARCHIVED, seller_id=rig.acme.seller2
                )
            ]
        )
        await uow.products.update([])
        await uow.products.insert([])
        await uow.commit()
    assert await stored(rig, rig.acme, new[0].id) == new[0]
    assert await stored(rig, rig.acme, new[1].id) == new[1]
    assert await stored(rig, rig.acme, tent.id) == changed


async def test_inserting_a_sku_in_use_is_refused(rig: CatalogRig) -> None:
    await add(rig, product(rig.acme, "TENT-1"))
    async with rig.import_uow(rig.acme.tenant_id) as uow:
        with pytest.raises(SkuTaken, match="listed meanwhile"):
            await uow.products.insert([product(rig.acme, "A-1"), product(rig.acme, "TENT-1")])
    async with rig.import_uow(rig.acme.tenant_id) as uow:
        assert await uow.products.lock_by_sku(["A-1"]) == {}


async def test_updating_another_tenants_product_changes_nothing(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    async with rig.import_uow(rig.globex.tenant_id) as uow:
        await uow.products.update([replace(tent, name="Stolen", version=2)])
        await uow.commit()
    assert await stored(rig, rig.acme, tent.id) == tent


async def test_locked_skus_make_a_second_batch_wait(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    renamed = replace(tent, name="First", version=2)
    async with rig.import_uow(rig.acme.tenant_id) as second:
        async with rig.import_uow(rig.acme.tenant_id) as first:
            await first.products.lock_by_sku(["TENT-1"])
            waiting = asyncio.create_task(second.products.lock_by_sku(["TENT-1"]))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await first.products.update([renamed])
            await first.commit()
        assert await asyncio.wait_for(waiting, 5) == {"TENT-1": renamed}
