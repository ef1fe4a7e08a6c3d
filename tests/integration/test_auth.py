"""Sign-up, sign-in, refresh rotation with reuse detection, logout, password change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher as Argon2

from impextech.platform.app import create_app
from impextech.platform.database import Conninfos
from tests.conftest import make_settings
from tests.support.pg import snapshot
from tests.support.world import PASSWORD, Account, Tenant, login, password_hash

pytestmark = pytest.mark.anyio

ACME = {"X-Tenant": "acme"}


def _type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code
    kind: str = body["type"].rsplit("/", 1)[-1]
    return kind


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _live_sessions(db: Conninfos, tenant: Tenant, account: Account) -> int:
    with psycopg.connect(db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute(
            "SELECT count(*) FROM auth_sessions WHERE user_id = %s AND revoked_at IS NULL",
            (account.id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_register_creates_a_shopper_and_signs_in(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "Ada@Example.org",
            "password": "plum orbit cactus 41",
            "display_name": "Ada",
        },
        headers=ACME,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user"]["role"] == "shopper"
    assert body["user"]["email"] == "Ada@example.org"  # the domain part is normalised
    assert body["tokens"]["token_type"] == "Bearer"
    assert body["tokens"]["expires_in"] == 900
    assert "password_hash" not in response.text
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['tokens']['access_token']}"}
    )
    assert me.json()["id"] == body["user"]["id"]


async def test_email_is_unique_per_tenant_case_insensitively(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    before = snapshot(clean_db.owner)
    taken = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "SHOPPER@acme.example",
            "password": "plum orbit cactus 41",
            "display_name": "X",
        },
        headers=ACME,
    )
    assert taken.status_code == 409
    assert _type(taken) == "email-taken"
    assert snapshot(clean_db.owner) == before
    # the same address is free in another marketplace
    other = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "newcomer@acme.example",
            "password": "plum orbit cactus 41",
            "display_name": "X",
        },
        headers={"X-Tenant": "globex"},
    )
    assert other.status_code == 201


async def test_weak_password_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    before = snapshot(clean_db.owner)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "bob@example.org", "password": "password1234", "display_name": "Bob"},
        headers=ACME,
    )
    assert response.status_code == 422
    assert _type(response) == "weak-password"
    assert response.json()["errors"][0]["path"] == ["body", "password"]
    assert snapshot(clean_db.owner) == before


async def test_unknown_email_and_wrong_password_answer_alike(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    unknown = await client.post(
        "/api/v1/auth/login",
        json={"email": "nobody@acme.example", "password": PASSWORD},
        headers=ACME,
    )
    wrong = await client.post(
        "/api/v1/auth/login",
        json={"email": "shopper@acme.example", "password": PASSWORD + "x"},
        headers=ACME,
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert _type(unknown) == "invalid-credentials"


async def test_login_does_the_same_hashing_work_whether_or_not_the_account_exists(
    client: httpx.AsyncClient, world: dict[str, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing oracle, counted instead of timed: an unknown email and a wrong password each
    cost exactly one argon2 verification, against a hash of the same cost parameters. (A
    missing one would answer ~50x faster; the timing itself is measured by bench/timing.)"""
    verified: list[str] = []
    real_verify = Argon2.verify

    def counting_verify(self: Argon2, password_hash: str | bytes, password: str | bytes) -> bool:
        text = password_hash.decode() if isinstance(password_hash, bytes) else password_hash
        verified.append(text.rsplit("$", 2)[0])  # "$argon2id$v=19$m=...,t=...,p=..."
        return real_verify(self, password_hash, password)

    monkeypatch.setattr(Argon2, "verify", counting_verify)

    async def attempt(email: str) -> list[str]:
        verified.clear()
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": "wrong-password-x"},
            headers=ACME,
        )
        assert response.status_code == 401
        return list(verified)

    stored = password_hash().rsplit("$", 2)[0]
    for i in range(3):
        assert await attempt(f"ghost{i}@acme.example") == [stored]
        assert await attempt("shopper@acme.example") == [stored]


async def test_login_in_the_wrong_marketplace_fails(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": "shopper@acme.example", "password": PASSWORD},
        headers={"X-Tenant": "globex"},
    )
    assert response.status_code == 401
    missing = await client.post(
        "/api/v1/auth/login", json={"email": "shopper@acme.example", "password": PASSWORD}
    )
    assert missing.status_code == 400
    assert _type(missing) == "tenant-required"
    unknown = await client.post(
        "/api/v1/auth/login",
        json={"email": "shopper@acme.example", "password": PASSWORD},
        headers={"X-Tenant": "nosuchshop"},
    )
    assert unknown.status_code == 404
    assert _type(unknown) == "unknown-tenant"


async def test_subdomain_names_the_tenant(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    response = await client.post(
        "http://acme.localhost/api/v1/auth/login",
        json={"email": "shopper@acme.example", "password": PASSWORD},
    )
    assert response.status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    shopper = world["acme"]["shopper"]
    first = shopper.refresh_token
    rotated = await _refresh(client, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    new_access = rotated.json()["access_token"]
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {new_access}"})
    ).status_code == 200

    # later than a client's retry could be (tests/integration/test_sessions.py has the retry)
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world["acme"].id),))
        conn.execute(
            "UPDATE refresh_tokens SET used_at = used_at - interval '1 minute'"
            " WHERE used_at IS NOT NULL"
        )
    reused = await _refresh(client, first)
    assert reused.status_code == 401
    assert _type(reused) == "refresh-token-reused"
    # the whole family is gone: the newest refresh token and the access token stop working
    assert (await _refresh(client, second)).status_code == 401
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {new_access}"})
    assert me.status_code == 401
    # other sessions of the same user are untouched
    other = await login(client, Account(shopper.id, shopper.email, "shopper", "acme"))
    assert (await client.get("/api/v1/users/me", headers=other.auth)).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "0" * 32 + "." + "x" * 43, "zz" * 16 + "." + "x" * 43],
)
async def test_bogus_refresh_tokens_are_refused(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, token: str
) -> None:
    before = snapshot(clean_db.owner)
    response = await _refresh(client, token)
    assert response.status_code in (401, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(clean_db.owner) == before


async def test_refresh_with_another_tenants_header_is_refused(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    shopper = world["acme"]["shopper"]
    response = await client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": shopper.refresh_token},
        headers={"X-Tenant": "globex"},
    )
    assert response.status_code == 401
    assert _type(response) == "tenant-mismatch"
    # the refused request did not use the token up
    assert (await _refresh(client, shopper.refresh_token)).status_code == 200


async def test_logout_ends_this_session_only(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    seller = acme["seller"]
    second = await login(client, Account(seller.id, seller.email, "seller", "acme"))
    assert _live_sessions(clean_db, acme, seller) == 2
    assert (await client.post("/api/v1/auth/logout", headers=seller.auth)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=seller.auth)).status_code == 401
    assert (await _refresh(client, seller.refresh_token)).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=second.auth)).status_code == 200
    assert _live_sessions(clean_db, acme, seller) == 1


async def test_logout_all_ends_every_session(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    seller = acme["seller"]
    second = await login(client, Account(seller.id, seller.email, "seller", "acme"))
    assert (await client.post("/api/v1/auth/logout-all", headers=seller.auth)).status_code == 204
    for account in (seller, second):
        assert (await client.get("/api/v1/users/me", headers=account.auth)).status_code == 401
        assert (await _refresh(client, account.refresh_token)).status_code == 401
    assert _live_sessions(clean_db, acme, seller) == 0
    # another user's session is untouched
    assert (await client.get("/api/v1/users/me", headers=acme["admin"].auth)).status_code == 200


async def test_password_change_revokes_every_session_and_starts_a_new_one(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    second = await login(client, Account(shopper.id, shopper.email, "shopper", "acme"))
    wrong = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it-at-all", "new_password": "quartz meadow 99 falcon"},
        headers=shopper.auth,
    )
    assert wrong.status_code == 401
    assert _live_sessions(clean_db, acme, shopper) == 2
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "quartz meadow 99 falcon"},
        headers=shopper.auth,
    )
    assert changed.status_code == 200, changed.text
    for account in (shopper, second):
        assert (await client.get("/api/v1/users/me", headers=account.auth)).status_code == 401
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=fresh)).status_code == 200
    assert _live_sessions(clean_db, acme, shopper) == 1
    old = await client.post(
        "/api/v1/auth/login", json={"email": shopper.email, "password": PASSWORD}, headers=ACME
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/v1/auth/login",
        json={"email": shopper.email, "password": "quartz meadow 99 falcon"},
        headers=ACME,
    )
    assert new.status_code == 200


async def test_access_token_of_one_tenant_is_refused_with_another_tenants_header(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    seller = world["acme"]["seller"]
    for extra in ({"X-Tenant": "globex"},):
        response = await client.get("/api/v1/users/me", headers={**seller.auth, **extra})
        assert response.status_code == 401
        assert _type(response) == "tenant-mismatch"
    on_subdomain = await client.get("http://globex.localhost/api/v1/users/me", headers=seller.auth)
    assert on_subdomain.status_code == 401
    assert (
        await client.get("http://acme.localhost/api/v1/users/me", headers=seller.auth)
    ).status_code == 200


@pytest.mark.parametrize("header", ["Bearer", "Bearer abc", "Basic Zm9vOmJhcg==", "Token x.y.z"])
async def test_malformed_authorization_headers_answer_401(
    client: httpx.AsyncClient, world: dict[str, Tenant], header: str
) -> None:
    response = await client.get("/api/v1/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_suspended_marketplace_stops_answering_within_the_cache_ttl(
    tmp_path: Path, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    # The same app as every test's, with a tenant cache short enough to wait out.
    app = create_app(make_settings(tmp_path, IMPEXTECH_TENANT_CACHE_SECONDS="0.2"), clean_db.app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        try:
            await _suspension_takes_effect(client, world, clean_db)
        finally:
            await app.state.database.dispose()


async def _suspension_takes_effect(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    shopper = world["acme"]["shopper"]
    browse = await client.get("/api/v1/products", headers=ACME)
    assert browse.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=shopper.auth)).status_code == 200
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("UPDATE tenants SET status = 'suspended' WHERE slug = 'acme'")
    await asyncio.sleep(0.3)
    before = snapshot(clean_db.owner)
    anonymous = await client.get("/api/v1/products", headers=ACME)
    assert anonymous.status_code == 404
    assert _type(anonymous) == "unknown-tenant"
    signed_in = await client.get("/api/v1/users/me", headers=shopper.auth)
    assert signed_in.status_code == 404
    assert _type(signed_in) == "unknown-tenant"
    refresh = await _refresh(client, shopper.refresh_token)
    assert refresh.status_code == 401
    assert _type(refresh) == "invalid-token"
    login_attempt = await client.post(
        "/api/v1/auth/login", json={"email": shopper.email, "password": PASSWORD}, headers=ACME
    )
    assert login_attempt.status_code == 404
    assert snapshot(clean_db.owner) == before
    # the other marketplace is unaffected
    globex = world["globex"]["shopper"]
    assert (await client.get("/api/v1/users/me", headers=globex.auth)).status_code == 200
