"""Catalogue: public browsing and search, ownership, optimistic versions, archive."""

from __future__ import annotations

import uuid

import httpx
import pytest

from impextech.catalog.adapters.http import ProductOut, ProductPageOut
from impextech.platform.database import Conninfos
from tests.support.pg import snapshot
from tests.support.world import Tenant, make_product

pytestmark = pytest.mark.anyio

ACME = {"X-Tenant": "acme"}


def _type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    kind: str = response.json()["type"].rsplit("/", 1)[-1]
    return kind


@pytest.fixture
async def shelf(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> dict[str, dict[str, object]]:
    acme = world["acme"]
    items = {
        "tent": await make_product(
            client, acme["seller"], "T-1", name="Storm Tent", category="outdoor",
            description="A two-person tent for wind and rain",
            price={"amount": 12900, "currency": "EUR"}, stock=3,
        ),
        "lamp": await make_product(
            client, acme["seller"], "L-1", name="Head Lamp", category="outdoor",
            price={"amount": 2500, "currency": "EUR"}, stock=0,
        ),
        "pan": await make_product(
            client, acme["seller2"], "P-1", name="Cast Iron Pan", category="kitchen",
            description="Seasoned for searing", price={"amount": 4500, "currency": "EUR"}, stock=9,
        ),
        "knife": await make_product(
            client, acme["seller2"], "K-1", name="Chef Knife", category="kitchen",
            price={"amount": 7000, "currency": "EUR"}, stock=2,
        ),
    }  # fmt: skip
    await make_product(client, world["globex"]["seller"], "T-1", name="Globex Tent")
    return items


async def _names(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get(f"/api/v1/products?{query}", headers=ACME)
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["items"]]


async def test_search_filters_and_sorts(
    client: httpx.AsyncClient, shelf: dict[str, dict[str, object]]
) -> None:
    assert await _names(client, "q=tent") == ["Storm Tent"]
    assert await _names(client, "q=tents") == ["Storm Tent"]  # stemmed
    assert await _names(client, "q=searing") == ["Cast Iron Pan"]  # description
    assert await _names(client, "q=kitchen&sort=name") == ["Cast Iron Pan", "Chef Knife"]
    assert await _names(client, "category=outdoor&sort=price_asc") == ["Head Lamp", "Storm Tent"]
    assert await _names(client, "in_stock=true&sort=price_desc") == [
        "Storm Tent",
        "Chef Knife",
        "Cast Iron Pan",
    ]
    assert await _names(client, "in_stock=false") == ["Head Lamp"]
    assert await _names(client, "min_price=3000&max_price=8000&sort=price_asc") == [
        "Cast Iron Pan",
        "Chef Knife",
    ]
    assert await _names(client, "sort=newest") == [
        "Chef Knife",
        "Cast Iron Pan",
        "Head Lamp",
        "Storm Tent",
    ]
    seller2 = shelf["pan"]["seller_id"]
    assert await _names(client, f"seller_id={seller2}&sort=name") == ["Cast Iron Pan", "Chef Knife"]
    assert await _names(client, "q=globex") == []  # the other tenant's tent


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "name"])
async def test_cursor_pagination_visits_every_product_once(
    client: httpx.AsyncClient, shelf: dict[str, dict[str, object]], sort: str
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": "1", "sort": sort, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/products", params=params, headers=ACME)
        assert page.status_code == 200
        seen += [p["name"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(p["name"]) for p in shelf.values())
    assert len(seen) == 4
    if sort == "price_asc":
        assert seen == ["Head Lamp", "Cast Iron Pan", "Chef Knife", "Storm Tent"]


async def test_cursor_is_bound_to_sort_and_tenant(
    client: httpx.AsyncClient, shelf: dict[str, dict[str, object]]
) -> None:
    page = await client.get("/api/v1/products?limit=1&sort=name", headers=ACME)
    cursor = page.json()["next_cursor"]
    other_sort = await client.get(f"/api/v1/products?sort=price_asc&cursor={cursor}", headers=ACME)
    assert other_sort.status_code == 422
    other_tenant = await client.get(
        f"/api/v1/products?sort=name&cursor={cursor}", headers={"X-Tenant": "globex"}
    )
    assert other_tenant.status_code == 422
    assert other_tenant.json()["errors"][0]["path"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("min_price=-1", ["query", "min_price"]),
        ("limit=0", ["query", "limit"]),
        ("limit=101", ["query", "limit"]),
        ("sort=cheapest", ["query", "sort"]),
        ("in_stock=maybe", ["query", "in_stock"]),
        ("min_price=500&max_price=100", ["query", "min_price"]),
        ("currency=euro", ["query", "currency"]),
        ("seller_id=42", ["query", "seller_id"]),
        ("q=%00drop", ["query", "q"]),
    ],
)
async def test_bad_list_queries_answer_422(
    client: httpx.AsyncClient, shelf: dict[str, dict[str, object]], query: str, path: list[str]
) -> None:
    response = await client.get(f"/api/v1/products?{query}", headers=ACME)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == path


async def test_public_get_and_etag(
    client: httpx.AsyncClient, shelf: dict[str, dict[str, object]]
) -> None:
    tent = shelf["tent"]
    response = await client.get(f"/api/v1/products/{tent['id']}", headers=ACME)
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"
    assert response.json() == tent
    # the document matches the documented schema exactly
    assert set(response.json()) == set(ProductOut.model_fields)
    assert ProductOut.model_validate_json(response.content).model_dump(mode="json") == tent
    listed = await client.get("/api/v1/products?limit=2", headers=ACME)
    page = ProductPageOut.model_validate_json(listed.content)
    assert page.model_dump(mode="json") == listed.json()
    other = await client.get(f"/api/v1/products/{tent['id']}", headers={"X-Tenant": "globex"})
    assert other.status_code == 404
    assert _type(other) == "product-not-found"
    assert (await client.get(f"/api/v1/products/{uuid.uuid4()}", headers=ACME)).status_code == 404
    assert (await client.get("/api/v1/products/not-a-uuid", headers=ACME)).status_code == 422


async def test_sku_is_unique_per_tenant(
    client: httpx.AsyncClient, world: dict[str, Tenant], shelf: dict[str, dict[str, object]],
    clean_db: Conninfos,
) -> None:  # fmt: skip
    before = snapshot(clean_db.owner)
    body = {
        "sku": "T-1",
        "name": "Dup",
        "category": "x",
        "price": {"amount": 1, "currency": "EUR"},
        "stock": 1,
    }
    dup = await client.post("/api/v1/products", json=body, headers=world["acme"]["seller2"].auth)
    assert dup.status_code == 409
    assert _type(dup) == "sku-taken"
    assert snapshot(clean_db.owner) == before


async def test_update_needs_the_current_version(
    client: httpx.AsyncClient, world: dict[str, Tenant], shelf: dict[str, dict[str, object]],
    clean_db: Conninfos,
) -> None:  # fmt: skip
    seller = world["acme"]["seller"]
    url = f"/api/v1/products/{shelf['tent']['id']}"
    before = snapshot(clean_db.owner)
    missing = await client.patch(url, json={"stock": 1}, headers=seller.auth)
    assert missing.status_code == 428
    stale = await client.patch(url, json={"stock": 1}, headers={**seller.auth, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert _type(stale) == "version-mismatch"
    junk = await client.patch(url, json={"stock": 1}, headers={**seller.auth, "If-Match": "v1"})
    assert junk.status_code == 412
    assert snapshot(clean_db.owner) == before

    ok = await client.patch(
        url,
        json={"stock": 1, "price": {"amount": 11900, "currency": "EUR"}},
        headers={**seller.auth, "If-Match": '"1"'},
    )
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    assert (ok.json()["stock"], ok.json()["price"]["amount"], ok.json()["version"]) == (1, 11900, 2)
    assert ok.json()["name"] == "Storm Tent"
    # the same old version again is now stale: the lost update is refused
    again = await client.patch(url, json={"stock": 9}, headers={**seller.auth, "If-Match": '"1"'})
    assert again.status_code == 412
    weak = await client.patch(url, json={"stock": 2}, headers={**seller.auth, "If-Match": 'W/"2"'})
    assert weak.status_code == 200


async def test_sellers_manage_only_their_own_products(
    client: httpx.AsyncClient, world: dict[str, Tenant], shelf: dict[str, dict[str, object]],
    clean_db: Conninfos,
) -> None:  # fmt: skip
    acme = world["acme"]
    url = f"/api/v1/products/{shelf['tent']['id']}"
    before = snapshot(clean_db.owner)
    for who in ("seller2", "shopper"):
        caller = acme[who]
        patch = await client.patch(
            url, json={"stock": 0}, headers={**caller.auth, "If-Match": '"1"'}
        )
        assert patch.status_code == 403
        archive = await client.delete(url, headers={**caller.auth, "If-Match": '"1"'})
        assert archive.status_code == 403
    foreign = world["globex"]["admin"]
    assert (
        await client.patch(url, json={"stock": 0}, headers={**foreign.auth, "If-Match": '"1"'})
    ).status_code == 404
    assert snapshot(clean_db.owner) == before
    admin = await client.patch(
        url, json={"stock": 0}, headers={**acme["admin"].auth, "If-Match": '"1"'}
    )
    assert admin.status_code == 200


async def test_shoppers_cannot_list_products(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    before = snapshot(clean_db.owner)
    body = {
        "sku": "S-1",
        "name": "x",
        "category": "x",
        "price": {"amount": 1, "currency": "EUR"},
        "stock": 1,
    }
    response = await client.post(
        "/api/v1/products", json=body, headers=world["acme"]["shopper"].auth
    )
    assert response.status_code == 403
    anonymous = await client.post("/api/v1/products", json=body, headers=ACME)
    assert anonymous.status_code == 401
    assert snapshot(clean_db.owner) == before


async def test_archive_hides_from_the_public_but_not_from_the_owner(
    client: httpx.AsyncClient, world: dict[str, Tenant], shelf: dict[str, dict[str, object]]
) -> None:
    seller = world["acme"]["seller"]
    url = f"/api/v1/products/{shelf['lamp']['id']}"
    archived = await client.delete(url, headers={**seller.auth, "If-Match": '"1"'})
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert "Head Lamp" not in await _names(client, "limit=100")
    assert (await client.get(url, headers=ACME)).status_code == 404
    assert (await client.get(url, headers=world["acme"]["seller2"].auth)).status_code == 404
    assert (await client.get(url, headers=seller.auth)).status_code == 200
    assert (await client.get(url, headers=world["acme"]["admin"].auth)).status_code == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"price": {"amount": "12", "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": 1.5, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": 100, "currency": "XYZ"}}, ["body", "price", "currency"]),
        ({"stock": -1}, ["body", "stock"]),
        ({"stock": "5"}, ["body", "stock"]),
        ({"sku": "bad sku"}, ["body", "sku"]),
        ({"seller_id": str(uuid.uuid4())}, ["body", "seller_id"]),
        ({"version": 9}, ["body", "version"]),
        ({"status": "active"}, ["body", "status"]),
        ({"tenant_id": str(uuid.uuid4())}, ["body", "tenant_id"]),
    ],
)
async def test_invalid_or_forbidden_product_fields(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos,
    body: dict[str, object], path: list[str],
) -> None:  # fmt: skip
    base: dict[str, object] = {
        "sku": "V-1", "name": "Valid", "category": "misc",
        "price": {"amount": 100, "currency": "EUR"}, "stock": 1,
    }  # fmt: skip
    before = snapshot(clean_db.owner)
    response = await client.post(
        "/api/v1/products", json={**base, **body}, headers=world["acme"]["seller"].auth
    )
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["errors"]] == [path]
    assert snapshot(clean_db.owner) == before
