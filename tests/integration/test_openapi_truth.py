"""The HTTP edge says what it does: 405 names every method a path serves, and the OpenAPI
document states the rules the server enforces (If-Match, integers, text, passwords, tokens)."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from impextech.identity.domain.passwords import MAX_LENGTH, MIN_LENGTH
from impextech.kernel.domain.text import multi_line, single_line
from impextech.kernel.web import MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN
from impextech.platform.app import create_app
from impextech.platform.database import Conninfos
from impextech.platform.settings import Settings
from tests.support.pg import snapshot
from tests.support.world import Tenant

pytestmark = pytest.mark.anyio

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
PARAM = re.compile(r"{\w+}")
ANY_ID = "0b6c3d1e-8f55-4b7e-9c1a-2d3e4f5a6b7c"


@pytest.fixture
async def offline(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app without a database: a 405 is decided before anything connects."""
    app = create_app(settings, "dbname=unused")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client


def _allow(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


async def test_allow_names_every_method_of_the_path_across_routers(
    offline: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = offline
    put = await client.put("/api/v1/products")
    assert put.status_code == 405
    assert _allow(put) == {"GET", "POST"}
    assert put.headers["content-type"] == "application/problem+json"
    assert put.json()["type"] == "https://impextech.example/problems/method-not-allowed"


async def test_a_literal_path_is_not_swallowed_by_a_parameterised_sibling(
    offline: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = offline
    response = await client.get("/api/v1/products/imports", headers={"X-Tenant": "acme"})
    assert response.status_code == 405
    assert _allow(response) == {"POST"}


async def test_every_documented_path_answers_405_with_exactly_its_documented_methods(
    offline: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = offline
    checked = 0
    for template, item in app.openapi()["paths"].items():
        documented = {m.upper() for m in item if m.upper() in METHODS}
        url = PARAM.sub(ANY_ID, template)
        for method in sorted(set(METHODS) - documented):
            response = await client.request(method, url)
            assert response.status_code == 405, (method, url, response.text)
            assert _allow(response) == documented, (method, url)
            checked += 1
    assert checked > 40


def _document(settings: Settings) -> dict[str, Any]:
    document: dict[str, Any] = create_app(settings, "dbname=unused").openapi()
    return document


def test_if_match_is_required_where_the_server_requires_it(settings: Settings) -> None:
    paths = _document(settings)["paths"]
    for method in ("patch", "delete"):
        parameters = paths["/api/v1/products/{product_id}"][method]["parameters"]
        if_match = [p for p in parameters if p["name"] == "If-Match"]
        assert len(if_match) == 1
        assert if_match[0]["required"] is True
        assert if_match[0]["in"] == "header"


def test_public_product_reads_take_a_token_or_none(settings: Settings) -> None:
    paths = _document(settings)["paths"]
    for path in ("/api/v1/products", "/api/v1/products/{product_id}"):
        assert {} in paths[path]["get"]["security"]
        assert {"HTTPBearer": []} in paths[path]["get"]["security"]
    assert {} not in paths["/api/v1/products"]["post"]["security"]


def test_the_document_states_the_password_and_text_rules(settings: Settings) -> None:
    schemas = _document(settings)["components"]["schemas"]
    for model, field in (("RegisterIn", "password"), ("PasswordIn", "new_password")):
        rule = schemas[model]["properties"][field]
        assert (rule["minLength"], rule["maxLength"]) == (MIN_LENGTH, MAX_LENGTH)
    product = schemas["ProductIn"]["properties"]
    assert product["name"]["pattern"] == SINGLE_LINE_PATTERN
    assert product["category"]["pattern"] == SINGLE_LINE_PATTERN
    assert product["description"]["pattern"] == MULTI_LINE_PATTERN
    assert product["stock"]["type"] == "integer"


def _accepted(rule: Any, value: str) -> bool:
    try:
        rule(value)
    except ValueError:
        return False
    return True


def test_the_text_patterns_accept_exactly_what_the_server_accepts() -> None:
    # Every character, alone and inside a word: the published pattern and the server's rule
    # agree on each (lone surrogates are no characters; JSON text cannot carry them).
    single, multi = re.compile(SINGLE_LINE_PATTERN), re.compile(MULTI_LINE_PATTERN)
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        for value in (char, f"a{char}b"):
            assert (single.fullmatch(value) is not None) == _accepted(single_line, value), hex(code)
            assert (multi.fullmatch(value) is not None) == _accepted(multi_line, value), hex(code)


async def test_an_integral_json_number_is_an_integer(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    seller = world["acme"]["seller"]
    body = {
        "sku": "INT-1",
        "name": "Whole",
        "category": "misc",
        "price": {"amount": 12900.0, "currency": "EUR"},
        "stock": 4.0,
    }
    created = await client.post("/api/v1/products", json=body, headers=seller.auth)
    assert created.status_code == 201, created.text
    assert created.json()["price"] == {"amount": 12900, "currency": "EUR"}
    assert created.json()["stock"] == 4
    before = snapshot(clean_db.owner)
    for bad in (12900.5, "12900", True):
        refused = await client.post(
            "/api/v1/products",
            json={**body, "sku": "INT-2", "price": {"amount": bad, "currency": "EUR"}},
            headers=seller.auth,
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["path"] == ["body", "price", "amount"]
    assert snapshot(clean_db.owner) == before


async def test_a_missing_or_empty_if_match_is_428(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    seller = world["acme"]["seller"]
    body = {
        "sku": "IFM-1",
        "name": "Versioned",
        "category": "misc",
        "price": {"amount": 100, "currency": "EUR"},
        "stock": 1,
    }
    created = await client.post("/api/v1/products", json=body, headers=seller.auth)
    url = f"/api/v1/products/{created.json()['id']}"
    before = snapshot(clean_db.owner)
    for headers in ({}, {"If-Match": ""}):
        response = await client.patch(url, json={"stock": 2}, headers={**seller.auth, **headers})
        assert response.status_code == 428, response.text
        deleted = await client.delete(url, headers={**seller.auth, **headers})
        assert deleted.status_code == 428, deleted.text
    assert snapshot(clean_db.owner) == before
