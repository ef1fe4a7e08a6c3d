"""The HTTP edge: security headers, request ids, CORS, probes, metrics and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from impextech.platform import database
from impextech.platform.app import create_app
from impextech.platform.settings import Settings
from tests.conftest import METRICS_AUTH, METRICS_TOKEN, make_settings
from tests.support.world import make_tenant

pytestmark = pytest.mark.anyio

PROBLEM = "https://impextech.example/problems/"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
SHOP = "https://shop.example"
UNREACHABLE_DB = "host=127.0.0.1 port=1 dbname=nothing user=nobody connect_timeout=2"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
async def edge(
    db: database.Conninfos, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the tests that need no fresh state (headers, ids, documents)."""
    app = create_app(make_settings(tmp_path_factory.mktemp("edge")), db.app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.29", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.database.dispose()


def _ensure_acme(owner: str) -> None:
    """An active acme, whatever an earlier test of the session left behind (even suspended)."""
    with psycopg.connect(owner) as conn:
        found = conn.execute(
            "UPDATE tenants SET status = 'active' WHERE slug = 'acme' RETURNING id"
        ).fetchone()
    if found is None:
        make_tenant(owner, "acme")


def _assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert len(headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/healthz", {}, 200),
        ("GET", "/api/v1/products", {"headers": {"X-Tenant": "acme"}}, 200),
        ("GET", "/api/v1/products", {}, 400),
        ("GET", "/api/v1/users/me", {}, 401),
        ("GET", "/no/such/route", {}, 404),
        ("DELETE", "/api/v1/auth/login", {}, 405),
        ("POST", "/api/v1/auth/login", {"content": b"x=1", "headers": {"X-Tenant": "acme"}}, 415),
        ("POST", "/api/v1/auth/login", {"content": b"{", "headers": {"X-Tenant": "acme"}}, 415),
        (
            "POST",
            "/api/v1/auth/login",
            {"content": b"{", "headers": {"Content-Type": "application/json"}},
            400,
        ),
    ],
)
async def test_every_answer_carries_the_security_headers(
    edge: httpx.AsyncClient,
    db: database.Conninfos,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    _ensure_acme(db.owner)
    response = await edge.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    _assert_security_headers(response)
    assert response.headers["content-security-policy"] == API_CSP
    if path.startswith("/api/"):
        assert response.headers["cache-control"] == "no-store"
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_docs_page_gets_its_own_csp(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/docs")
    assert response.status_code == 200
    _assert_security_headers(response)
    csp = response.headers["content-security-policy"]
    assert csp != API_CSP
    assert "frame-ancestors 'none'" in csp
    assert csp.startswith("default-src 'none'; ")
    assert "script-src 'self'" in csp


async def test_an_oversized_body_refused_at_the_edge_has_headers_too(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.post(
        "/api/v1/auth/login",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(2 << 20)},
    )
    assert response.status_code == 413
    _assert_security_headers(response)
    assert response.json()["type"] == PROBLEM + "body-too-large"


@pytest.mark.parametrize(
    "sent",
    ["abcdefgh", "req-0001.retry_2", "A" * 64, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
)
async def test_a_sane_request_id_is_echoed(edge: httpx.AsyncClient, sent: str) -> None:
    response = await edge.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers.get_list("x-request-id") == [sent]


@pytest.mark.parametrize(
    "sent",
    [
        "short",
        "A" * 65,
        "has spaces in it",
        "semi;colon-1234",
        "new\\nline-123456",
        "<script>alert(1)</script>",
        "",
    ],
)
async def test_an_insane_request_id_is_replaced(edge: httpx.AsyncClient, sent: str) -> None:
    response = await edge.get("/healthz", headers={"X-Request-ID": sent})
    [echoed] = response.headers.get_list("x-request-id")
    assert echoed != sent
    assert GENERATED_ID.match(echoed), echoed


async def test_a_request_id_is_generated_per_request(edge: httpx.AsyncClient) -> None:
    ids = [(await edge.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert all(GENERATED_ID.match(i) for i in ids), ids
    assert len(set(ids)) == 3


# ---------------------------------------------------------------------------------------------
# CORS


@pytest.fixture(scope="module")
async def cors_client(
    db: database.Conninfos, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path_factory.mktemp("cors"), IMPEXTECH_CORS_ORIGINS=SHOP)
    app = create_app(settings, db.app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.30", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.database.dispose()


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match",
    }


async def test_a_preflight_from_the_allowed_origin_is_allowed(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options("/api/v1/products/abc", headers=_preflight(SHOP))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SHOP
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "if-match"} <= allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers


async def test_a_preflight_from_another_origin_is_not_allowed(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        "/api/v1/products/abc", headers=_preflight("https://evil.example")
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://impextech.example/problems/cors-refused",
        "title": "CORS preflight refused",
        "status": 400,
        "detail": "Disallowed CORS origin",
    }
    _assert_security_headers(response)


async def test_simple_requests_expose_headers_only_to_the_allowed_origin(
    cors_client: httpx.AsyncClient,
) -> None:
    allowed = await cors_client.get("/healthz", headers={"Origin": SHOP})
    assert allowed.headers["access-control-allow-origin"] == SHOP
    exposed = {
        h.strip().lower() for h in allowed.headers["access-control-expose-headers"].split(",")
    }
    assert exposed == {"etag", "location", "retry-after", "x-request-id"}
    other = await cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    # Without Allow-Origin the browser shows the other page nothing (Expose-Headers is moot).
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-credentials" not in other.headers


async def test_without_configured_origins_there_is_no_cors(edge: httpx.AsyncClient) -> None:
    response = await edge.options("/api/v1/products", headers=_preflight(SHOP))
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 405
    simple = await edge.get("/healthz", headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in simple.headers


# ---------------------------------------------------------------------------------------------
# Probes and metrics


async def test_liveness_needs_no_database_and_readiness_says_so(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), UNREACHABLE_DB)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.31", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
    await app.state.database.dispose()
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    # The detail names the failure's class (refused, timed out...): the pool decides which.
    assert isinstance(body.pop("detail"), str)
    assert body == {
        "type": PROBLEM + "not-ready",
        "title": "The database is not reachable",
        "status": 503,
        "instance": "/readyz",
    }


async def test_readiness_reports_the_schema_revision(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "schema": database.head_revision()}


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, clean_db: database.Conninfos
) -> None:
    make_tenant(clean_db.owner, "acme")
    missing = "/api/v1/products/00000000-0000-0000-0000-000000000000"
    for _ in range(2):
        assert (await client.get(missing, headers={"X-Tenant": "acme"})).status_code == 404
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/route-xyz")).status_code == 404

    response = await client.get("/metrics", headers=METRICS_AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert (
        'impextech_http_requests_total{method="GET",route="/api/v1/products/{product_id}",'
        'status="404"} 2.0'
    ) in lines
    assert 'impextech_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in lines
    assert 'impextech_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    # Raw paths never become labels: ids and junk would explode the series count.
    assert "00000000-0000-0000-0000-000000000000" not in response.text
    assert "route-xyz" not in response.text
    assert any(
        line.startswith(
            'impextech_http_request_duration_seconds_count{method="GET",route="/healthz"}'
        )
        for line in lines
    )


async def test_each_app_has_its_own_metrics_registry(
    client: httpx.AsyncClient, settings: Settings, clean_db: database.Conninfos
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    other = create_app(settings, clean_db.app)
    transport = httpx.ASGITransport(app=other, client=("203.0.113.32", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as fresh:
        text = (await fresh.get("/metrics", headers=METRICS_AUTH)).text
    await other.state.database.dispose()
    assert 'route="/healthz"' not in text
    assert (
        'impextech_http_requests_total{method="GET",route="/healthz",status="200"} 1.0'
        in (await client.get("/metrics", headers=METRICS_AUTH)).text
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN}],
)
async def test_metrics_answer_only_the_configured_bearer_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "impextech_" not in response.text


async def test_without_a_metrics_token_the_api_port_serves_no_metrics(
    tmp_path: Path, clean_db: database.Conninfos
) -> None:
    app = create_app(make_settings(tmp_path, IMPEXTECH_METRICS_TOKEN=""), clean_db.app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.33", 4000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for headers in ({}, METRICS_AUTH, {"Authorization": "Bearer "}):
                assert (await c.get("/metrics", headers=headers)).status_code == 404
    finally:
        await app.state.database.dispose()


# ---------------------------------------------------------------------------------------------
# OpenAPI


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


def _is_problem_schema(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema.get("title") == "Problem" and {"type", "title", "status"} <= set(
        schema.get("required", [])
    )


async def test_openapi_documents_the_problem_responses(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    operations = _operations(spec)
    assert len(operations) >= 20
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert "500" in responses, where
        if path.startswith("/api/"):
            assert "422" in responses, where
        if "{" in path:
            assert "404" in responses, where
        for status, documented in responses.items():
            if int(status) < 400:
                continue
            content = documented.get("content", {})
            assert list(content) == ["application/problem+json"], (where, status)
            assert _is_problem_schema(spec, content["application/problem+json"]["schema"]), (
                where,
                status,
            )
            assert documented["description"], (where, status)
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})


async def test_openapi_documents_the_body_limits_on_every_body(edge: httpx.AsyncClient) -> None:
    spec = (await edge.get("/openapi.json")).json()
    with_body = [
        (path, method, op) for path, method, op in _operations(spec) if "requestBody" in op
    ]
    assert len(with_body) == 11
    for path, method, operation in with_body:
        media = "text/csv" if path == "/api/v1/products/imports" else "application/json"
        assert list(operation["requestBody"]["content"]) == [media], (method, path)
        assert {"413", "415", "400"} <= set(operation["responses"]), (method, path)
