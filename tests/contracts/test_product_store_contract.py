"""ProductStore: SqlProductStore on PostgreSQL and FakeProductStore in memory, one behaviour."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product, ProductSort, ProductStatus
from impextech.catalog.service.ports import ProductQuery
from impextech.kernel.domain.money import Money
from tests.contracts.rigs import SIDES, CatalogRig, Party, add, catalog_rig, product, stored
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[CatalogRig]:
    async with catalog_rig(request, request.param) as made:
        yield made


async def test_an_added_product_is_seen_by_others_only_once_committed(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1", description="Two people", stock=0)
    async with rig.uow(rig.acme.tenant_id) as uow:
        await uow.products.add(tent)
        assert await uow.products.get(tent.id) == tent  # its own write
        assert await stored(rig, rig.acme, tent.id) is None
        await uow.commit()
    assert await stored(rig, rig.acme, tent.id) == tent


async def test_leaving_without_commit_undoes_every_write(rig: CatalogRig) -> None:
    kept = product(rig.acme, "KEPT-1")
    await add(rig, kept)
    lost = product(rig.acme, "LOST-1")

    async def write_then_fail() -> None:
        async with rig.uow(rig.acme.tenant_id) as uow:
            await uow.products.add(lost)
            assert await uow.products.update(replace(kept, name="Renamed", version=2), 1)
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    async with rig.uow(rig.acme.tenant_id) as uow:
        await uow.products.add(replace(lost, id=uuid.uuid4(), sku="LOST-2"))
    assert await stored(rig, rig.acme, lost.id) is None
    assert await stored(rig, rig.acme, kept.id) == kept
    page = await search(rig, rig.acme)
    assert [p.sku for p in page.items] == ["KEPT-1"]


async def test_another_tenant_neither_sees_nor_changes_a_product(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    async with rig.uow(rig.globex.tenant_id) as uow:
        assert await uow.products.get(tent.id) is None
        assert await uow.products.update(replace(tent, name="Stolen", version=2), 1) is False
        assert (await uow.products.search(ProductQuery())).items == []
        await uow.commit()
    assert await stored(rig, rig.acme, tent.id) == tent


async def test_a_sku_is_unique_within_a_tenant_and_a_refusal_keeps_the_rest(
    rig: CatalogRig,
) -> None:
    await add(rig, product(rig.acme, "TENT-1"))
    before = product(rig.acme, "LAMP-1")
    async with rig.uow(rig.acme.tenant_id) as uow:
        await uow.products.add(before)
        with pytest.raises(SkuTaken):
            await uow.products.add(product(rig.acme, "TENT-1"))
        await uow.commit()
    assert await stored(rig, rig.acme, before.id) == before
    elsewhere = product(rig.globex, "TENT-1", seller_id=rig.globex.seller)
    await add(rig, elsewhere)
    assert await stored(rig, rig.globex, elsewhere.id) == elsewhere


async def test_an_update_needs_the_stored_version_and_writes_only_what_may_change(
    rig: CatalogRig,
) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    later = T0 + timedelta(hours=1)
    changed = replace(
        tent,
        sku="TENT-2",
        name="Storm Tent",
        description="Wind",
        category="outdoor",
        price=Money(500, "USD"),
        stock=0,
        status=ProductStatus.ARCHIVED,
        version=2,
        updated_at=later,
    )
    async with rig.uow(rig.acme.tenant_id) as uow:
        assert await uow.products.update(changed, 2) is False
        assert await uow.products.get(tent.id) == tent
        # Owner and creation time are not the update's to change, whatever it is given.
        moved = replace(changed, seller_id=rig.acme.seller2, created_at=later)
        assert await uow.products.update(moved, 1) is True
        await uow.commit()
    assert await stored(rig, rig.acme, tent.id) == changed


async def test_an_update_to_a_sku_in_use_is_refused(rig: CatalogRig) -> None:
    tent, lamp = product(rig.acme, "TENT-1"), product(rig.acme, "LAMP-1")
    await add(rig, tent, lamp)
    async with rig.uow(rig.acme.tenant_id) as uow:
        with pytest.raises(SkuTaken):
            await uow.products.update(replace(lamp, sku="TENT-1", version=2), 1)
    assert await stored(rig, rig.acme, lamp.id) == lamp


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_writer_waits_for_the_first_and_then_sees_its_outcome(
    rig: CatalogRig, first_commits: bool
) -> None:
    tent = product(rig.acme, "TENT-1")
    await add(rig, tent)
    mine = replace(tent, name="First", version=2)
    theirs = replace(tent, name="Second", version=2)
    async with rig.uow(rig.acme.tenant_id) as second:
        async with rig.uow(rig.acme.tenant_id) as first:
            assert await first.products.update(mine, 1) is True
            waiting = asyncio.create_task(second.products.update(theirs, 1))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            if first_commits:
                await first.commit()
        assert await asyncio.wait_for(waiting, 5) is (not first_commits)
        await second.commit()
    assert await stored(rig, rig.acme, tent.id) == (mine if first_commits else theirs)


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_writer_of_one_new_sku_waits_for_the_first(
    rig: CatalogRig, first_commits: bool
) -> None:
    mine, theirs = product(rig.acme, "TENT-1"), product(rig.acme, "TENT-1")
    async with rig.uow(rig.acme.tenant_id) as second:
        async with rig.uow(rig.acme.tenant_id) as first:
            await first.products.add(mine)
            waiting = asyncio.create_task(second.products.add(theirs))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            if first_commits:
                await first.commit()
        if first_commits:
            with pytest.raises(SkuTaken):
                await asyncio.wait_for(waiting, 5)
        else:
            await asyncio.wait_for(waiting, 5)
        await second.commit()
    page = await search(rig, rig.acme)
    assert [p.id for p in page.items] == [mine.id if first_commits else theirs.id]


# -- search -------------------------------------------------------------------------------------


async def search(rig: CatalogRig, party: Party, **fields: Any) -> Any:
    async with rig.uow(party.tenant_id) as uow:
        return await uow.products.search(ProductQuery(**fields))


@pytest.fixture
async def shelf(rig: CatalogRig) -> dict[str, Product]:
    a = rig.acme
    items = {
        "tent": product(a, "T-1", minutes=1, name="Storm Tent", category="outdoor",
                        description="A two-person tent for wind and rain",
                        price=Money(12900, "EUR"), stock=3),
        "lamp": product(a, "L-1", minutes=2, name="Head Lamp", category="outdoor",
                        price=Money(2500, "EUR"), stock=0),
        "pan": product(a, "P-1", minutes=3, name="Cast Iron Pan", category="kitchen",
                       description="Seasoned pans for frying", price=Money(4500, "USD"),
                       stock=9, seller_id=a.seller2),
        "knife": product(a, "K-1", minutes=4, name="Chef Knife", category="kitchen",
                         price=Money(7000, "EUR"), stock=2, seller_id=a.seller2),
        "old": product(a, "O-1", minutes=5, name="Old Tent", category="outdoor",
                       status=ProductStatus.ARCHIVED),
    }  # fmt: skip
    await add(rig, *items.values())
    await add(rig, product(rig.globex, "T-1", name="Globex Tent", seller_id=rig.globex.seller))
    return items


async def names(rig: CatalogRig, **fields: Any) -> list[str]:
    page = await search(rig, rig.acme, **fields)
    return [p.name for p in page.items]


async def test_search_filters_and_sorts_the_active_products_of_the_tenant(
    rig: CatalogRig, shelf: dict[str, Product]
) -> None:
    assert await names(rig) == ["Chef Knife", "Cast Iron Pan", "Head Lamp", "Storm Tent"]
    assert await names(rig, sort=ProductSort.NAME) == [
        "Cast Iron Pan",
        "Chef Knife",
        "Head Lamp",
        "Storm Tent",
    ]
    assert await names(rig, sort=ProductSort.PRICE_ASC) == [
        "Head Lamp",
        "Cast Iron Pan",
        "Chef Knife",
        "Storm Tent",
    ]
    assert await names(rig, sort=ProductSort.PRICE_DESC, category="kitchen") == [
        "Chef Knife",
        "Cast Iron Pan",
    ]
    assert await names(rig, currency="USD") == ["Cast Iron Pan"]
    assert await names(rig, min_price=2500, max_price=7000, sort=ProductSort.PRICE_ASC) == [
        "Head Lamp",
        "Cast Iron Pan",
        "Chef Knife",
    ]
    assert await names(rig, in_stock=False) == ["Head Lamp"]
    assert await names(rig, in_stock=True, seller_id=rig.acme.seller2) == [
        "Chef Knife",
        "Cast Iron Pan",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tent", ["Storm Tent"]),  # not the archived Old Tent, nor globex's
        ("TENT", ["Storm Tent"]),
        ("tents", ["Storm Tent"]),
        ("storm tent", ["Storm Tent"]),
        ("storm lamp", []),
        ("kitchen", ["Chef Knife", "Cast Iron Pan"]),  # the category
        ("rain", ["Storm Tent"]),  # the description
        ("pan", ["Cast Iron Pan"]),
        ("tentacle", []),
    ],
)
async def test_search_text_matches_every_word_in_name_category_or_description(
    rig: CatalogRig, shelf: dict[str, Product], text: str, expected: list[str]
) -> None:
    assert await names(rig, text=text) == expected


@pytest.mark.parametrize("sort", list(ProductSort))
async def test_pages_visit_every_product_once_with_the_last_ones_position(
    rig: CatalogRig, shelf: dict[str, Product], sort: ProductSort
) -> None:
    whole = await names(rig, sort=sort)
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = await search(rig, rig.acme, sort=sort, after=after, limit=3)
        seen.extend(p.name for p in page.items)
        after = page.next_position
        if after is None:
            break
        last = page.items[-1]
        value = {
            ProductSort.NEWEST: last.created_at,
            ProductSort.NAME: last.name,
        }.get(sort, last.price.amount)
        assert after == (value, last.id)
    assert after is None
    assert seen == whole
    assert len(whole) == 4
