"""Login, register and password attempts are limited per client address and per account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from impextech.platform import database
from impextech.platform.app import create_app
from tests.conftest import make_settings
from tests.support.pg import snapshot
from tests.support.world import PASSWORD, Tenant, make_tenant

pytestmark = pytest.mark.anyio

PROBLEM = "https://impextech.example/problems/"
WINDOW = 900

ClientFor = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def limited_app(clean_db: database.Conninfos, tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(tmp_path, IMPEXTECH_AUTH_RATE_LIMIT=f"3/{WINDOW}"), clean_db.app)
    yield app
    await app.state.database.dispose()


@pytest.fixture
async def client_for(limited_app: FastAPI) -> AsyncIterator[ClientFor]:
    """A client per source address: the limiter sees each as a different machine."""
    async with AsyncExitStack() as stack:

        async def make(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=limited_app, client=(address, 40_000))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )

        yield make


@pytest.fixture
def acme(clean_db: database.Conninfos) -> Tenant:
    return make_tenant(clean_db.owner, "acme")


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Tenant": "acme"},
    )


def _assert_limited(response: httpx.Response, path: str) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert 1 <= seconds <= WINDOW
    assert response.json() == {
        "type": PROBLEM + "rate-limited",
        "title": "Too many attempts",
        "status": 429,
        "detail": f"Too many attempts; retry in {seconds} s",
        "instance": path,
    }
    return seconds


def _sessions(owner: str, tenant: Tenant) -> list[tuple[Any, ...]]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        return conn.execute("SELECT user_id FROM auth_sessions ORDER BY created_at").fetchall()


async def test_the_fourth_login_from_one_address_is_refused(
    client_for: ClientFor, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await client_for("203.0.113.50")
    # Three different accounts, so only the per-address limit can trip.
    for who in ("admin", "seller", "seller2"):
        response = await _login(client, acme[who].email)
        assert response.status_code == 200, response.text
    before = snapshot(clean_db.owner)

    refused = await _login(client, acme["shopper"].email)

    _assert_limited(refused, "/api/v1/auth/login")
    assert snapshot(clean_db.owner) == before
    assert len(_sessions(clean_db.owner, acme)) == 3
    # Another machine logs the same account in without trouble.
    elsewhere = await client_for("203.0.113.51")
    assert (await _login(elsewhere, acme["shopper"].email)).status_code == 200


async def test_the_fourth_attempt_on_one_account_is_refused_from_any_address(
    client_for: ClientFor, acme: Tenant, clean_db: database.Conninfos
) -> None:
    seller = acme["seller"].email
    for n in range(3):
        client = await client_for(f"198.51.100.{n + 1}")
        wrong = await _login(client, seller, "not-the-password-at-all")
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["type"] == PROBLEM + "invalid-credentials"
    fourth = await client_for("198.51.100.4")
    before = snapshot(clean_db.owner)

    # Even the right password: the account is locked for this window.
    refused = await _login(fourth, seller)

    _assert_limited(refused, "/api/v1/auth/login")
    assert snapshot(clean_db.owner) == before
    assert _sessions(clean_db.owner, acme) == []
    # The case does not matter: it is the same account.
    assert (await _login(fourth, seller.upper())).status_code == 429
    # Another account from the very same address still works.
    other = await _login(fourth, acme["shopper"].email)
    assert other.status_code == 200, other.text
    assert _sessions(clean_db.owner, acme) == [(acme["shopper"].id,)]


async def test_register_is_limited_per_address(
    client_for: ClientFor, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await client_for("192.0.2.77")
    for n in range(3):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": f"new{n}@acme.example", "password": PASSWORD, "display_name": "New"},
            headers={"X-Tenant": "acme"},
        )
        assert response.status_code == 201, response.text
    before = snapshot(clean_db.owner)

    refused = await client.post(
        "/api/v1/auth/register",
        json={"email": "new3@acme.example", "password": PASSWORD, "display_name": "New"},
        headers={"X-Tenant": "acme"},
    )

    _assert_limited(refused, "/api/v1/auth/register")
    assert snapshot(clean_db.owner) == before
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(acme.id),))
        emails = conn.execute(
            "SELECT email FROM users WHERE email LIKE 'new%%' ORDER BY email"
        ).fetchall()
    assert emails == [("new0@acme.example",), ("new1@acme.example",), ("new2@acme.example",)]
    other = await client_for("192.0.2.78")
    ok = await other.post(
        "/api/v1/auth/register",
        json={"email": "new3@acme.example", "password": PASSWORD, "display_name": "New"},
        headers={"X-Tenant": "acme"},
    )
    assert ok.status_code == 201, ok.text


async def test_password_changes_are_limited_too(
    client_for: ClientFor, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await client_for("192.0.2.90")
    login = await _login(client, acme["shopper"].email)
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = {"current_password": "wrong-current-password", "new_password": "a-new-passphrase-77"}
    for _ in range(3):
        wrong = await client.post("/api/v1/auth/password", json=body, headers=auth)
        assert wrong.status_code == 401, wrong.text
    before = snapshot(clean_db.owner)

    refused = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-passphrase-77"},
        headers=auth,
    )

    _assert_limited(refused, "/api/v1/auth/password")
    assert snapshot(clean_db.owner) == before
    # The password did not change: the old one still signs in from elsewhere.
    elsewhere = await client_for("192.0.2.91")
    assert (await _login(elsewhere, acme["shopper"].email)).status_code == 200
