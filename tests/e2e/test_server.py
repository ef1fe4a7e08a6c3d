"""Over real HTTP against `impextech serve`: sessions, products, and the JSON logs it writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.support.pg import snapshot
from tests.support.world import PASSWORD

PROBLEM = "https://impextech.example/problems/"
ACME = {"X-Tenant": "acme"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + code
    assert body["status"] == status
    return body


def test_health_and_readiness_over_real_http(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert "server" not in ready.headers


def test_a_session_from_register_to_logout(http: httpx.Client) -> None:
    registered = http.post(
        "/api/v1/auth/register",
        json={"email": "e2e.shopper@acme.example", "password": PASSWORD, "display_name": "E2E"},
        headers=ACME,
    )
    assert registered.status_code == 201, registered.text
    user = registered.json()["user"]
    assert (user["email"], user["role"], user["status"]) == (
        "e2e.shopper@acme.example",
        "shopper",
        "active",
    )

    login = http.post(
        "/api/v1/auth/login",
        json={"email": "e2e.shopper@acme.example", "password": PASSWORD},
        headers=ACME,
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900

    me = http.get("/api/v1/users/me", headers=_bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]

    # Rotation: each refresh token works once and gives a new pair.
    first = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    second = http.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert second.status_code == 200, second.text
    newest = second.json()
    assert http.get("/api/v1/users/me", headers=_bearer(newest["access_token"])).status_code == 200

    # Replaying an already-rotated token revokes the whole family.
    reused = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    body = _problem(reused, 401, "refresh-token-reused")
    assert body["type"].endswith("refresh-token-reused")
    assert reused.headers["www-authenticate"] == "Bearer"
    after = http.post("/api/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]})
    _problem(after, 401, "invalid-token")
    dead = http.get("/api/v1/users/me", headers=_bearer(newest["access_token"]))
    _problem(dead, 401, "invalid-token")

    # A new session, then logout ends it.
    again = http.post(
        "/api/v1/auth/login",
        json={"email": "e2e.shopper@acme.example", "password": PASSWORD},
        headers=ACME,
    ).json()
    out = http.post("/api/v1/auth/logout", headers=_bearer(again["access_token"]))
    assert out.status_code == 204
    assert out.content == b""
    _problem(
        http.get("/api/v1/users/me", headers=_bearer(again["access_token"])), 401, "invalid-token"
    )
    _problem(
        http.post("/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]}),
        401,
        "invalid-token",
    )


def _seller_token(http: httpx.Client, server: Server) -> str:
    response = http.post(
        "/api/v1/auth/login",
        json={"email": server.tenants["acme"]["seller"].email, "password": PASSWORD},
        headers=ACME,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_a_seller_creates_updates_and_archives_a_product(
    http: httpx.Client, server: Server
) -> None:
    auth = _bearer(_seller_token(http, server))
    created = http.post(
        "/api/v1/products",
        json={
            "sku": "E2E-TENT",
            "name": "Blue Tent",
            "description": "Sleeps two",
            "category": "outdoor",
            "price": {"amount": 12_999, "currency": "EUR"},
            "stock": 3,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    url = f"/api/v1/products/{product['id']}"
    assert created.headers["location"] == url
    assert created.headers["etag"] == '"1"'
    assert (product["version"], product["status"], product["seller_id"]) == (
        1,
        "active",
        str(server.tenants["acme"]["seller"].id),
    )

    read = http.get(url, headers=ACME)
    assert read.headers["etag"] == '"1"'

    updated = http.patch(url, json={"stock": 7}, headers={**auth, "If-Match": read.headers["etag"]})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == '"2"'
    assert (updated.json()["stock"], updated.json()["version"]) == (7, 2)

    stale = http.patch(url, json={"stock": 1}, headers={**auth, "If-Match": '"1"'})
    _problem(stale, 412, "version-mismatch")
    missing = http.patch(url, json={"stock": 1}, headers=auth)
    _problem(missing, 428, "precondition-required")
    assert http.get(url, headers=ACME).json()["stock"] == 7

    archived = http.delete(url, headers={**auth, "If-Match": '"2"'})
    assert archived.status_code == 200, archived.text
    assert archived.json()["status"] == "archived"
    listed = http.get("/api/v1/products", headers=ACME).json()["items"]
    assert product["id"] not in [p["id"] for p in listed]
    # Another marketplace never sees it at all.
    _problem(http.get(url, headers={"X-Tenant": "globex"}), 404, "product-not-found")


def _wait_for_log(server: Server, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in server.log_lines():
            if line.get("event") == "request" and line.get("request_id") == request_id:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no request log line for {request_id}:\n{server.raw_log()}")


def test_every_log_line_is_json_with_request_and_tenant_context(
    http: httpx.Client, server: Server
) -> None:
    acme = server.tenants["acme"]
    token = _seller_token(http, server)
    http.get("/healthz", headers={"X-Request-ID": "e2e-anonymous-0001"})
    http.get("/api/v1/products", headers={**ACME, "X-Request-ID": "e2e-storefront-0001"})
    http.get("/api/v1/users/me", headers={**_bearer(token), "X-Request-ID": "e2e-signed-in-0001"})

    anonymous = _wait_for_log(server, "e2e-anonymous-0001")
    storefront = _wait_for_log(server, "e2e-storefront-0001")
    signed_in = _wait_for_log(server, "e2e-signed-in-0001")

    assert (anonymous["route"], anonymous["status"], anonymous["method"]) == (
        "/healthz",
        200,
        "GET",
    )
    assert anonymous["tenant_id"] is None
    assert anonymous["user_id"] is None
    assert (storefront["tenant_id"], storefront["user_id"]) == (str(acme.id), None)
    assert (signed_in["tenant_id"], signed_in["user_id"]) == (str(acme.id), str(acme["seller"].id))
    assert signed_in["route"] == "/api/v1/users/me"
    assert signed_in["level"] == "info"
    assert isinstance(signed_in["duration_ms"], float | int)
    assert signed_in["timestamp"].endswith("Z")

    lines = server.log_lines()  # raises if any line is not JSON
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests
    assert all(isinstance(line["request_id"], str) and line["request_id"] for line in requests)
    # Tokens and passwords never reach the log.
    raw = server.raw_log()
    assert token not in raw
    assert PASSWORD not in raw


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"email": "'
    sent = 0
    while sent < total:
        yield b"x" * 65_536
        sent += 65_536
    yield b'", "password": "x"}'


def test_oversized_bodies_over_real_http(http: httpx.Client, server: Server) -> None:
    limit = 1_048_576
    before = snapshot(server.infos.owner)
    declared = http.post(
        "/api/v1/auth/login",
        content=b'{"email": "' + b"x" * limit + b'"}',
        headers={**ACME, "Content-Type": "application/json"},
    )
    body = _problem(declared, 413, "body-too-large")
    assert body["title"] == "The request body is too large"

    chunked = http.post(
        "/api/v1/auth/login",
        content=_chunks(limit + 1),
        headers={**ACME, "Content-Type": "application/json"},
    )
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    _problem(chunked, 413, "body-too-large")
    assert snapshot(server.infos.owner) == before
    # The server is fine afterwards.
    assert http.get("/healthz").status_code == 200
