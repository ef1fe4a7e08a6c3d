"""Bad input on every write endpoint: a precise problem+json answer and an unchanged database.

One module-wide world (one tenant, a few logged-in accounts, one product) keeps the many cases
fast; every refused case compares a full snapshot of the database before and after.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from impextech.platform import database
from impextech.platform.app import create_app
from tests.conftest import make_settings
from tests.support.pg import snapshot, truncate_all
from tests.support.world import PASSWORD, Tenant, login, make_product, make_tenant

pytestmark = pytest.mark.anyio

PROBLEM = "https://impextech.example/problems/"
MAX_BODY = 1_048_576
# Stands for a lone surrogate: replaced by the six characters \ud800 in the JSON text itself.
LONE = "\ue000"

Path_ = tuple[str | int, ...]


@dataclass
class World:
    tenant: Tenant
    product_id: str
    client: httpx.AsyncClient
    owner: str


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
async def bad_world(db: database.Conninfos, module_tmp: Path) -> AsyncIterator[World]:
    truncate_all(db.owner)
    tenant = make_tenant(db.owner, "acme")
    app: FastAPI = create_app(make_settings(module_tmp), db.app)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.10", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for who in ("admin", "seller"):
            await login(client, tenant[who])
        product = await make_product(client, tenant["seller"], "BASE-1")
        yield World(tenant, str(product["id"]), client, db.owner)
    await app.state.database.dispose()


# ---------------------------------------------------------------------------------------------
# The endpoints and a valid body for each


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any]
    account: str | None = None
    if_match: bool = False


PRODUCT_BODY: dict[str, Any] = {
    "sku": "NEW-1",
    "name": "Blue Tent",
    "description": "Sleeps two",
    "category": "outdoor",
    "price": {"amount": 12_999, "currency": "EUR"},
    "stock": 3,
}

ENDPOINTS: dict[str, Endpoint] = {
    "register": Endpoint(
        "POST",
        "/api/v1/auth/register",
        {"email": "new@acme.example", "password": PASSWORD, "display_name": "New Person"},
    ),
    "login": Endpoint(
        "POST", "/api/v1/auth/login", {"email": "seller@acme.example", "password": PASSWORD}
    ),
    "refresh": Endpoint("POST", "/api/v1/auth/refresh", {"refresh_token": "{refresh}"}),
    "password": Endpoint(
        "POST",
        "/api/v1/auth/password",
        {"current_password": PASSWORD, "new_password": "a-brand-new-passphrase-77"},
        account="seller",
    ),
    "patch_me": Endpoint(
        "PATCH", "/api/v1/users/me", {"display_name": "Renamed"}, account="seller"
    ),
    "put_role": Endpoint(
        "PUT", "/api/v1/users/{seller2}/role", {"role": "shopper"}, account="admin"
    ),
    "post_product": Endpoint("POST", "/api/v1/products", PRODUCT_BODY, account="seller"),
    "patch_product": Endpoint(
        "PATCH",
        "/api/v1/products/{product}",
        {"name": "Green Tent", "stock": 4},
        account="seller",
        if_match=True,
    ),
}

# Fields a client may never set itself; `role` is the payload of put_role, so not there.
FORBIDDEN_FIELDS = ("role", "tenant_id", "id", "seller_id", "version", "status")


def encode(body: object) -> bytes:
    """JSON text as a client might send it: UTF-8, NaN allowed, LONE as a raw \\ud800 escape."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=True)
    return text.replace(LONE, "\\ud800").encode("utf-8")


def with_field(body: dict[str, Any], path: Path_, value: object) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert isinstance(out, dict)
    return out


# ---------------------------------------------------------------------------------------------
# The cases


@dataclass(frozen=True)
class Case:
    endpoint: str
    content: bytes
    status: int
    code: str
    # (path, pydantic error type or None when the type is not ours to pin) for 422s
    errors: tuple[tuple[Path_, str | None], ...] = ()
    content_type: str | None = "application/json"
    chunked: bool = False
    # None: pydantic's "N invalid field(s)"; the domain's own checks name the offending value.
    detail: str | None = None


def _cases() -> Iterator[Any]:
    for name, ep in ENDPOINTS.items():
        valid = encode(ep.body)
        text = valid.decode()
        first_string = next(k for k, v in ep.body.items() if isinstance(v, str))

        # malformed JSON
        yield pytest.param(
            Case(name, valid[: len(valid) // 2], 400, "malformed-json"), id=f"{name}-truncated"
        )
        yield pytest.param(
            Case(name, valid + b" garbage", 400, "malformed-json"), id=f"{name}-trailing-garbage"
        )
        yield pytest.param(
            Case(
                name, encode(with_field(ep.body, (first_string,), math.nan)), 400, "malformed-json"
            ),
            id=f"{name}-nan",
        )
        yield pytest.param(
            Case(
                name, encode(with_field(ep.body, (first_string,), -math.inf)), 400, "malformed-json"
            ),
            id=f"{name}-minus-infinity",
        )
        yield pytest.param(
            Case(name, text.replace('"', "'").encode(), 400, "malformed-json"),
            id=f"{name}-single-quotes",
        )
        # JSON text is UTF-8: a stray byte is malformed JSON, not some other "bad request".
        yield pytest.param(
            Case(name, valid.replace(b'": "', b'": "\xff', 1), 400, "malformed-json"),
            id=f"{name}-invalid-utf8",
        )
        # Nesting deep enough to exhaust the parser's recursion, well under the size limit.
        yield pytest.param(
            Case(name, b"[" * 200_000 + b"]" * 200_000, 400, "malformed-json"),
            id=f"{name}-deeply-nested",
        )

        # wrong shapes of the whole body
        yield pytest.param(
            Case(name, b"[]", 422, "validation-failed", ((("body",), "model_attributes_type"),)),
            id=f"{name}-array-body",
        )
        yield pytest.param(
            Case(name, b"null", 422, "validation-failed", ((("body",), "model_attributes_type"),)),
            id=f"{name}-null-body",
        )
        yield pytest.param(
            Case(
                name, b'"text"', 422, "validation-failed", ((("body",), "model_attributes_type"),)
            ),
            id=f"{name}-string-body",
        )
        yield pytest.param(
            Case(name, b"", 422, "validation-failed", ((("body",), "missing"),)),
            id=f"{name}-empty-body",
        )

        # mass assignment
        for forbidden in FORBIDDEN_FIELDS:
            if forbidden in ep.body:
                continue
            value: object = "admin" if forbidden == "role" else 7
            if forbidden in ("tenant_id", "id", "seller_id"):
                value = "00000000-0000-0000-0000-000000000001"
            yield pytest.param(
                Case(
                    name,
                    encode({**ep.body, forbidden: value}),
                    422,
                    "validation-failed",
                    ((("body", forbidden), "extra_forbidden"),),
                ),
                id=f"{name}-mass-assign-{forbidden}",
            )

        # oversized, with and without Content-Length
        padded = encode({**ep.body, first_string: "x" * (MAX_BODY + 1)})
        yield pytest.param(Case(name, padded, 413, "body-too-large"), id=f"{name}-too-large")
        yield pytest.param(
            Case(name, padded, 413, "body-too-large", chunked=True), id=f"{name}-too-large-chunked"
        )

        # not JSON
        for media, label in (
            ("text/plain", "text-plain"),
            ("application/x-www-form-urlencoded", "form"),
            (None, "no-content-type"),
        ):
            yield pytest.param(
                Case(name, valid, 415, "unsupported-media-type", content_type=media),
                id=f"{name}-{label}",
            )


TYPE_CASES: list[tuple[str, Path_, object, str | None]] = [
    ("register", ("email",), 5, "string_type"),
    ("register", ("email",), None, "string_type"),
    ("register", ("email",), "not-an-email", "value_error"),
    ("register", ("password",), ["x"], "string_type"),
    ("register", ("display_name",), 5, "string_type"),
    ("register", ("display_name",), {"first": "x"}, "string_type"),
    ("login", ("email",), 1, "string_type"),
    ("login", ("password",), True, "string_type"),
    ("login", ("password",), None, "string_type"),
    ("login", ("password",), "", "string_too_short"),
    ("refresh", ("refresh_token",), 123, "string_type"),
    ("refresh", ("refresh_token",), {}, "string_type"),
    ("refresh", ("refresh_token",), "", "string_too_short"),
    ("password", ("current_password",), 1, "string_type"),
    ("password", ("new_password",), None, "string_type"),
    ("patch_me", ("display_name",), 1, "string_type"),
    ("patch_me", ("display_name",), [], "string_type"),
    ("patch_me", ("display_name",), "   ", "value_error"),
    ("put_role", ("role",), 1, None),
    ("put_role", ("role",), None, None),
    ("put_role", ("role",), "superuser", None),
    ("put_role", ("role",), "ADMIN", None),
    ("post_product", ("stock",), "5", "int_type"),
    ("post_product", ("stock",), 1.5, "int_type"),
    ("post_product", ("stock",), True, "int_type"),
    ("post_product", ("stock",), -1, "greater_than_equal"),
    ("post_product", ("stock",), 1_000_000_001, "less_than_equal"),
    ("post_product", ("price", "amount"), "100", "int_type"),
    ("post_product", ("price", "amount"), 10.5, "int_type"),
    ("post_product", ("price", "amount"), -1, "greater_than_equal"),
    ("post_product", ("price", "amount"), 10**12 + 1, "less_than_equal"),
    ("post_product", ("price", "amount"), None, "int_type"),
    ("post_product", ("price", "currency"), 978, "string_type"),
    ("post_product", ("price", "currency"), "eur", "string_pattern_mismatch"),
    ("post_product", ("price", "currency"), "XXX", None),
    ("post_product", ("price",), [], "model_attributes_type"),
    ("post_product", ("price",), "12.99 EUR", "model_attributes_type"),
    ("post_product", ("price",), None, "model_attributes_type"),
    ("post_product", ("name",), 5, "string_type"),
    ("post_product", ("name",), "", "string_too_short"),
    ("post_product", ("sku",), "-starts-with-dash", "string_pattern_mismatch"),
    ("post_product", ("sku",), "has space", "string_pattern_mismatch"),
    ("post_product", ("category",), None, "string_type"),
    ("patch_product", ("stock",), "4", "int_type"),
    ("patch_product", ("name",), 5, "string_type"),
    ("patch_product", ("price",), {"amount": "1", "currency": "EUR"}, "int_type"),
    ("patch_product", ("price",), {"amount": 1, "currency": "XXX"}, None),
]


def _type_cases() -> Iterator[Any]:
    for name, path, value, error_type in TYPE_CASES:
        body = with_field(ENDPOINTS[name].body, path, value)
        error_path: Path_ = ("body", *path)
        if path == ("price",) and isinstance(value, dict):
            error_path = ("body", "price", "amount")
        detail = None
        if "XXX" in json.dumps(value):
            error_path = ("body", "price", "currency")
            detail = "unknown currency 'XXX'"
        label = "-".join(str(p) for p in path)
        yield pytest.param(
            Case(
                name,
                encode(body),
                422,
                "validation-failed",
                ((error_path, error_type),),
                detail=detail,
            ),
            id=f"{name}-{label}-{json.dumps(value)[:24]}",
        )


# Characters that never belong in a one-line name: NUL, C0 and C1 controls, DEL, a lone
# surrogate, bidirectional overrides and isolates, Unicode noncharacters.
BAD_SINGLE_LINE = {
    "nul": "a\u0000b",
    "lone-surrogate": f"a{LONE}b",
    "bidi-rlo": "abc\u202etxt.exe",
    "bidi-lre": "a\u202ab",
    "bidi-isolate": "a\u2066b\u2069",
    "c1-nel": "a\u0085b",
    "c1-csi": "a\u009bb",
    "del": "a\u007fb",
    "tab": "a\tb",
    "newline": "a\nb",
    "noncharacter": "a\ufffeb",
}
# Multi-line text (description) may hold tabs and newlines, nothing else of the above.
BAD_MULTI_LINE = {k: v for k, v in BAD_SINGLE_LINE.items() if k not in {"tab", "newline"}}
BAD_MULTI_LINE["form-feed"] = "a\u000cb"

TEXT_FIELDS: list[tuple[str, str, bool]] = [
    ("register", "display_name", False),
    ("patch_me", "display_name", False),
    ("post_product", "name", False),
    ("post_product", "category", False),
    ("post_product", "description", True),
    ("patch_product", "name", False),
    ("patch_product", "description", True),
]

TOO_LONG: list[tuple[str, str, int]] = [
    ("register", "display_name", 101),
    ("register", "email", 255),
    ("register", "password", 1025),
    ("login", "password", 1025),
    ("refresh", "refresh_token", 513),
    ("password", "new_password", 1025),
    ("patch_me", "display_name", 101),
    ("post_product", "name", 201),
    ("post_product", "category", 81),
    ("post_product", "description", 10_001),
    ("post_product", "sku", 65),
    ("patch_product", "name", 201),
]


# Optional fields report a generic "too_long"; emails are refused by the email validator.
LONG_TYPES = {
    ("post_product", "sku"): "string_pattern_mismatch",
    ("register", "email"): "value_error",
    ("patch_me", "display_name"): "too_long",
    ("patch_product", "name"): "too_long",
}


def _unicode_cases() -> Iterator[Any]:
    for name, field_name, multi_line in TEXT_FIELDS:
        bad = BAD_MULTI_LINE if multi_line else BAD_SINGLE_LINE
        for label, value in bad.items():
            expected = "value_error"
            if label == "lone-surrogate":
                # pydantic refuses unencodable text before our own check; either way a 422.
                expected = "string_unicode"
            yield pytest.param(
                Case(
                    name,
                    encode(with_field(ENDPOINTS[name].body, (field_name,), value)),
                    422,
                    "validation-failed",
                    ((("body", field_name), expected if label != "lone-surrogate" else None),),
                ),
                id=f"{name}-{field_name}-{label}",
            )
    for name, field_name, length in TOO_LONG:
        value = "a" * length
        if field_name == "email":
            value = "a" * (length - len("@acme.example")) + "@acme.example"
        yield pytest.param(
            Case(
                name,
                encode(with_field(ENDPOINTS[name].body, (field_name,), value)),
                422,
                "validation-failed",
                (
                    (
                        ("body", field_name),
                        LONG_TYPES.get((name, field_name), "string_too_long"),
                    ),
                ),
            ),
            id=f"{name}-{field_name}-too-long",
        )


# ---------------------------------------------------------------------------------------------
# Driving a case


async def prepare(world: World, ep: Endpoint) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, headers and template substitutions for one endpoint in the module world."""
    tenant = world.tenant
    headers: dict[str, str] = {"X-Tenant": "acme"}
    if ep.account is not None:
        headers.update(tenant[ep.account].auth)
    subs = {"seller2": str(tenant["seller2"].id), "product": world.product_id}
    if ep.if_match:
        current = await world.client.get(f"/api/v1/products/{world.product_id}", headers=headers)
        assert current.status_code == 200, current.text
        headers["If-Match"] = current.headers["etag"]
    return ep.path.format(**subs), headers, subs


def assert_problem(
    response: httpx.Response, status: int, code: str, path: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + code
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["status"] == status
    assert set(body) <= {"type", "title", "status", "detail", "instance", "errors"}
    if path is not None and "instance" in body:
        assert body["instance"] == path
    return body


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65_536):
        yield data[start : start + 65_536]


async def send(
    world: World,
    ep: Endpoint,
    url: str,
    headers: dict[str, str],
    content: bytes,
    content_type: str | None = "application/json",
    chunked: bool = False,
) -> httpx.Response:
    request_headers = dict(headers)
    if content_type is not None:
        request_headers["Content-Type"] = content_type
    if chunked:
        return await world.client.request(
            ep.method, url, content=_chunks(content), headers=request_headers
        )
    return await world.client.request(ep.method, url, content=content, headers=request_headers)


ALL_CASES = [*_cases(), *_type_cases(), *_unicode_cases()]


@pytest.mark.parametrize("case", ALL_CASES)
async def test_bad_input_is_refused_and_changes_nothing(bad_world: World, case: Case) -> None:
    ep = ENDPOINTS[case.endpoint]
    url, headers, _ = await prepare(bad_world, ep)
    content = case.content.replace(b"{refresh}", b"0" * 32 + b"." + b"r" * 43)
    before = snapshot(bad_world.owner)

    response = await send(
        bad_world, ep, url, headers, content, case.content_type, chunked=case.chunked
    )

    body = assert_problem(response, case.status, case.code, url)
    if case.status == 422:
        errors = body["errors"]
        assert [tuple(e["path"]) for e in errors] == [p for p, _ in case.errors]
        for error, (_, error_type) in zip(errors, case.errors, strict=True):
            assert isinstance(error["message"], str)
            assert error["message"]
            if error_type is not None:
                assert error["type"] == error_type
        assert body["detail"] == (case.detail or f"{len(errors)} invalid field(s)")
    else:
        assert "errors" not in body
    if case.chunked:
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    elif case.status == 413:
        assert int(response.request.headers["content-length"]) > MAX_BODY
    assert snapshot(bad_world.owner) == before


# ---------------------------------------------------------------------------------------------
# The same endpoints accept the valid body: the refusals above are the cases' doing


async def _fresh_refresh_token(world: World) -> str:
    account = await login(world.client, world.tenant["seller2"])
    return account.refresh_token


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_the_valid_body_is_accepted(bad_world: World, name: str) -> None:
    ep = ENDPOINTS[name]
    body = dict(ep.body)
    if name == "refresh":
        body["refresh_token"] = await _fresh_refresh_token(bad_world)
    if name == "password":
        # Changing the password ends every session: use an account nobody else here needs.
        shopper = await login(bad_world.client, bad_world.tenant["shopper"])
        ep = Endpoint(ep.method, ep.path, ep.body, account="shopper")
        assert shopper.access_token
    if name == "post_product":
        body["sku"] = "ACCEPTED-1"
    url, headers, _ = await prepare(bad_world, ep)
    response = await send(bad_world, ep, url, headers, encode(body))
    assert response.status_code in (200, 201), response.text
    assert response.headers["content-type"] == "application/json"
    if name == "put_role":
        assert response.json()["role"] == "shopper"
        restored = await bad_world.client.put(
            url, json={"role": "seller"}, headers={**headers, "X-Tenant": "acme"}
        )
        assert restored.status_code == 200, restored.text


# ---------------------------------------------------------------------------------------------
# Odd but legitimate text is accepted and stored NFC-normalised

GOOD_TEXT = {
    "emoji": "Tent \U0001f3d5\ufe0f for \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "combining": "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "hangul-jamo": "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "zero-width-space": "zero\u200bwidth",
    "zero-width-joiner": "a\u200db",
    "word-joiner": "a\u2060b",
    "rtl-script": "\u05e9\u05dc\u05d5\u05dd world",
    "astral": "\U0001d54f\U0001d550\U0001d551",
}


@pytest.mark.parametrize(("label", "value"), list(GOOD_TEXT.items()), ids=list(GOOD_TEXT))
async def test_odd_but_valid_text_round_trips_nfc(bad_world: World, label: str, value: str) -> None:
    nfc = unicodedata.normalize("NFC", value)
    seller = bad_world.tenant["seller"]
    headers = {"X-Tenant": "acme", **seller.auth}

    profile = await bad_world.client.patch(
        "/api/v1/users/me", json={"display_name": value}, headers=headers
    )
    assert profile.status_code == 200, profile.text
    assert profile.json()["display_name"] == nfc

    sku = f"TXT-{label}"
    created = await bad_world.client.post(
        "/api/v1/products",
        json={**PRODUCT_BODY, "sku": sku, "name": value, "category": value, "description": value},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["name"], product["category"], product["description"]) == (nfc, nfc, nfc)
    fetched = await bad_world.client.get(f"/api/v1/products/{product['id']}", headers=headers)
    assert fetched.json()["name"] == nfc

    with psycopg.connect(bad_world.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(bad_world.tenant.id),))
        stored_name = conn.execute(
            "SELECT display_name FROM users WHERE id = %s", (seller.id,)
        ).fetchone()
        stored_product = conn.execute(
            "SELECT name, category, description FROM products WHERE sku = %s", (sku,)
        ).fetchone()
    assert stored_name == (nfc,)
    assert stored_product == (nfc, nfc, nfc)


async def test_a_register_with_combining_characters_stores_nfc(bad_world: World) -> None:
    response = await bad_world.client.post(
        "/api/v1/auth/register",
        json={"email": "zoe@acme.example", "password": PASSWORD, "display_name": "Zoe\u0308"},
        headers={"X-Tenant": "acme"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["display_name"] == "Zo\u00eb"


# ---------------------------------------------------------------------------------------------
# 404, 405 and 500 are problem+json too


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/route", 404, "not-found"),
        ("POST", "/api/v1/nothing-here", 404, "not-found"),
        ("DELETE", "/api/v1/auth/login", 405, "method-not-allowed"),
        ("GET", "/api/v1/auth/register", 405, "method-not-allowed"),
        ("PUT", "/api/v1/users/me", 405, "method-not-allowed"),
    ],
)
async def test_unknown_route_and_wrong_method_are_problems(
    bad_world: World, method: str, path: str, status: int, code: str
) -> None:
    before = snapshot(bad_world.owner)
    response = await bad_world.client.request(method, path, headers={"X-Tenant": "acme"})
    body = assert_problem(response, status, code, path)
    assert body["instance"] == path
    if status == 405:
        allowed = response.headers["allow"]
        assert method not in {m.strip() for m in allowed.split(",")}
    assert snapshot(bad_world.owner) == before


async def test_an_unknown_product_id_is_a_product_not_found(bad_world: World) -> None:
    path = "/api/v1/products/00000000-0000-0000-0000-000000000000"
    response = await bad_world.client.get(path, headers={"X-Tenant": "acme"})
    assert_problem(response, 404, response.json()["type"].removeprefix(PROBLEM), path)
    assert response.json()["type"].endswith("not-found")


async def test_a_crash_is_a_500_problem_with_a_request_id(
    db: database.Conninfos, tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path), db.app)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("boom: secret internals")

    transport = httpx.ASGITransport(app=app, client=("198.51.100.11", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # One crash only: logging its traceback is slow, and the id logic is test_edge's.
        response = await client.get("/test-only/boom", headers={"X-Request-ID": "req-crash-0001"})
    await app.state.database.dispose()

    body = assert_problem(response, 500, "internal-error")
    assert body == {
        "type": PROBLEM + "internal-error",
        "title": "Internal error",
        "status": 500,
        **({"instance": "/test-only/boom"} if "instance" in body else {}),
    }
    assert "secret internals" not in response.text
    assert response.headers.get_list("x-request-id") == ["req-crash-0001"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_refresh_naming_another_marketplace_is_refused_and_changes_nothing(
    bad_world: World,
) -> None:
    with psycopg.connect(bad_world.owner) as conn:
        exists = conn.execute("SELECT 1 FROM tenants WHERE slug = 'globex'").fetchone()
    if exists is None:
        make_tenant(bad_world.owner, "globex")
    account = await login(bad_world.client, bad_world.tenant["seller2"])
    before = snapshot(bad_world.owner)

    response = await bad_world.client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": account.refresh_token},
        headers={"X-Tenant": "globex"},
    )

    assert_problem(response, 401, "tenant-mismatch", "/api/v1/auth/refresh")
    # The refused refresh must not have rotated (used up) the token...
    assert snapshot(bad_world.owner) == before
    # ...so the rightful client can still use it.
    retry = await bad_world.client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": account.refresh_token},
        headers={"X-Tenant": "acme"},
    )
    assert retry.status_code == 200, retry.text


@pytest.mark.parametrize(
    ("name", "path", "field"),
    [
        ("put_role", "/api/v1/users/not-a-uuid/role", "user_id"),
        ("put_role", "/api/v1/users/12345/role", "user_id"),
        ("patch_product", "/api/v1/products/not-a-uuid", "product_id"),
        ("patch_product", "/api/v1/products/1%20OR%201=1", "product_id"),
    ],
)
async def test_a_malformed_path_id_is_a_422_naming_it(
    bad_world: World, name: str, path: str, field: str
) -> None:
    ep = ENDPOINTS[name]
    _, headers, _ = await prepare(bad_world, ep)
    before = snapshot(bad_world.owner)

    response = await send(bad_world, ep, path, headers, encode(ep.body))

    body = assert_problem(response, 422, "validation-failed")
    assert [(e["path"], e["type"]) for e in body["errors"]] == [(["path", field], "uuid_parsing")]
    assert snapshot(bad_world.owner) == before
