"""Profiles and user administration: no IDOR, no mass assignment, admins stay in their tenant."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.domain.model import User, UserStatus
from impextech.identity.service.accounts import AccountAdmin
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.kernel.domain.errors import ImpextechError
from impextech.kernel.domain.principal import Role
from impextech.platform.database import Conninfos
from tests.support.pg import snapshot
from tests.support.world import Tenant

pytestmark = pytest.mark.anyio


def _type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    kind: str = response.json()["type"].rsplit("/", 1)[-1]
    return kind


async def test_me_reads_and_edits_whitelisted_fields(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    shopper = world["acme"]["shopper"]
    me = await client.get("/api/v1/users/me", headers=shopper.auth)
    assert me.status_code == 200
    assert set(me.json()) == {
        "id", "email", "display_name", "role", "status", "created_at", "updated_at"
    }  # fmt: skip
    patched = await client.patch(
        "/api/v1/users/me", json={"display_name": "  Zoë Q.  "}, headers=shopper.auth
    )
    assert patched.status_code == 200
    assert patched.json()["display_name"] == "Zoë Q."
    assert (await client.get("/api/v1/users/me", headers=shopper.auth)).json()[
        "display_name"
    ] == "Zoë Q."


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"display_name": "x", "role": "admin"},
        {"tenant_id": str(uuid.uuid4())},
        {"id": str(uuid.uuid4())},
        {"email": "other@acme.example"},
        {"status": "active"},
        {"password_hash": "x"},
    ],
)
async def test_mass_assignment_on_me_is_refused(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, body: dict[str, str]
) -> None:
    before = snapshot(clean_db.owner)
    response = await client.patch(
        "/api/v1/users/me", json=body, headers=world["acme"]["shopper"].auth
    )
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["errors"]]
    forbidden = [k for k in body if k != "display_name"]
    assert paths == [["body", k] for k in forbidden]
    assert snapshot(clean_db.owner) == before


async def test_non_admin_asking_for_another_user_gets_404(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    acme = world["acme"]
    for who in ("shopper", "seller"):
        caller = acme[who]
        target = acme["admin"]
        response = await client.get(f"/api/v1/users/{target.id}", headers=caller.auth)
        assert response.status_code == 404
        assert _type(response) == "user-not-found"
        missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=caller.auth)
        # identical to a user that does not exist at all
        assert missing.status_code == 404
        assert missing.json()["title"] == response.json()["title"]
        own = await client.get(f"/api/v1/users/{caller.id}", headers=caller.auth)
        assert own.status_code == 200


async def test_admin_cannot_see_or_touch_other_tenants_users(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    admin = world["acme"]["admin"]
    foreign = world["globex"]["seller"]
    before = snapshot(clean_db.owner)
    assert (await client.get(f"/api/v1/users/{foreign.id}", headers=admin.auth)).status_code == 404
    role = await client.put(
        f"/api/v1/users/{foreign.id}/role", json={"role": "shopper"}, headers=admin.auth
    )
    assert role.status_code == 404
    off = await client.post(f"/api/v1/users/{foreign.id}/deactivate", headers=admin.auth)
    assert off.status_code == 404
    listed = await client.get("/api/v1/users?limit=100", headers=admin.auth)
    assert {u["email"].split("@")[1] for u in listed.json()["items"]} == {"acme.example"}
    assert snapshot(clean_db.owner) == before


async def test_admin_lists_with_filters_and_cursor_pagination(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    admin = world["acme"]["admin"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/users", params=params, headers=admin.auth)
        assert page.status_code == 200
        seen += [u["email"] for u in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(a.email for a in world["acme"].accounts.values())
    assert len(seen) == len(set(seen))
    sellers = await client.get("/api/v1/users?role=seller", headers=admin.auth)
    assert sorted(u["email"] for u in sellers.json()["items"]) == [
        "seller2@acme.example",
        "seller@acme.example",
    ]
    bad_role = await client.get("/api/v1/users?role=king", headers=admin.auth)
    assert bad_role.status_code == 422
    assert bad_role.json()["errors"][0]["path"] == ["query", "role"]


async def test_a_cursor_from_another_tenant_is_refused(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    page = await client.get("/api/v1/users?limit=1", headers=world["acme"]["admin"].auth)
    cursor = page.json()["next_cursor"]
    assert cursor
    replay = await client.get(
        "/api/v1/users", params={"cursor": cursor}, headers=world["globex"]["admin"].auth
    )
    assert replay.status_code == 422
    assert replay.json()["errors"][0]["path"] == ["query", "cursor"]


@pytest.mark.parametrize("who", ["shopper", "seller"])
async def test_non_admins_cannot_administer(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, who: str
) -> None:
    acme = world["acme"]
    caller = acme[who]
    before = snapshot(clean_db.owner)
    assert (await client.get("/api/v1/users", headers=caller.auth)).status_code == 403
    role = await client.put(
        f"/api/v1/users/{caller.id}/role", json={"role": "admin"}, headers=caller.auth
    )
    assert role.status_code == 403
    off = await client.post(f"/api/v1/users/{acme['admin'].id}/deactivate", headers=caller.auth)
    assert off.status_code == 403
    assert snapshot(clean_db.owner) == before


async def test_admin_changes_a_role_and_it_applies_at_once(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    product = {
        "sku": "NEW-1",
        "name": "Thing",
        "category": "misc",
        "price": {"amount": 100, "currency": "EUR"},
        "stock": 1,
    }
    assert (
        await client.post("/api/v1/products", json=product, headers=shopper.auth)
    ).status_code == 403
    changed = await client.put(
        f"/api/v1/users/{shopper.id}/role", json={"role": "seller"}, headers=acme["admin"].auth
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "seller"
    # the role comes from the database on each request, not from the old token
    assert (
        await client.post("/api/v1/products", json=product, headers=shopper.auth)
    ).status_code == 201
    own = await client.put(
        f"/api/v1/users/{acme['admin'].id}/role",
        json={"role": "shopper"},
        headers=acme["admin"].auth,
    )
    assert own.status_code == 409


async def test_deactivation_revokes_sessions_and_blocks_login(
    client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    acme = world["acme"]
    seller = acme["seller"]
    off = await client.post(f"/api/v1/users/{seller.id}/deactivate", headers=acme["admin"].auth)
    assert off.status_code == 200
    assert off.json()["status"] == "deactivated"
    assert (await client.get("/api/v1/users/me", headers=seller.auth)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": seller.refresh_token}
    )
    assert refresh.status_code == 401
    relogin = await client.post(
        "/api/v1/auth/login",
        json={"email": seller.email, "password": "correct-horse-battery-staple-42"},
        headers={"X-Tenant": "acme"},
    )
    assert relogin.status_code == 401
    filtered = await client.get("/api/v1/users?status=deactivated", headers=acme["admin"].auth)
    assert [u["id"] for u in filtered.json()["items"]] == [str(seller.id)]


async def _create_admin(app: FastAPI, slug: str, email: str, password: str) -> User | str:
    database: Database = app.state.database
    accounts = AccountAdmin(
        lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id),
        SqlTenantStore(database),
        Argon2PasswordHasher(1),
        SystemClock(),
    )
    try:
        return await accounts.create_admin(slug, email, password, "  Second Admin ")
    except ImpextechError as exc:
        return exc.code


async def test_create_admin_checks_like_registration_and_the_admin_can_sign_in(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    before = snapshot(clean_db.owner)
    refused = {
        "taken, other case": ("acme", "ADMIN@acme.example", "plum orbit cactus 41"),
        "bad email": ("acme", "not-an-email", "plum orbit cactus 41"),
        "weak password": ("acme", "boss@acme.example", "short"),
        "password from the email": ("acme", "plumorbit@acme.example", "plumorbit cactus 41"),
        "unknown marketplace": ("nowhere", "boss@acme.example", "plum orbit cactus 41"),
    }
    codes = {k: await _create_admin(app, *args) for k, args in refused.items()}
    assert codes == {
        "taken, other case": "email-taken",
        "bad email": "validation-failed",
        "weak password": "weak-password",
        "password from the email": "weak-password",
        "unknown marketplace": "unknown-tenant",
    }
    assert snapshot(clean_db.owner) == before

    created = await _create_admin(app, "acme", "Boss@Acme.Example", "plum orbit cactus 41")
    assert isinstance(created, User)
    assert (created.email, created.display_name, created.role, created.status) == (
        "Boss@acme.example",
        "Second Admin",
        Role.ADMIN,
        UserStatus.ACTIVE,
    )
    signed_in = await client.post(
        "/api/v1/auth/login",
        json={"email": "boss@acme.example", "password": "plum orbit cactus 41"},
        headers={"X-Tenant": "acme"},
    )
    assert signed_in.status_code == 200
    token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    listed = await client.get("/api/v1/users?role=admin", headers=token)
    assert sorted(u["email"] for u in listed.json()["items"]) == [
        "Boss@acme.example",
        "admin@acme.example",
    ]
    # an address is taken per marketplace only
    other = await _create_admin(app, "globex", "boss@acme.example", "plum orbit cactus 41")
    assert isinstance(other, User)
    assert other.tenant_id == world["globex"].id
