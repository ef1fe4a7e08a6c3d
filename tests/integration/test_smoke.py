from __future__ import annotations

import httpx
import pytest

from tests.support.world import Tenant, make_product

pytestmark = pytest.mark.anyio


async def test_seller_lists_a_product_and_shoppers_see_it(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    acme = world["acme"]
    created = await make_product(client, acme["seller"], "SKU-1", name="Blue Tent")
    listed = await client.get("/api/v1/products", headers={"X-Tenant": "acme"})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["items"]] == [created["id"]]
