"""A pooled connection never carries one request's tenant into the next."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection

from impextech.kernel.db import Database, SqlUnitOfWork, make_pool
from impextech.platform import database
from impextech.platform.app import create_app
from tests.conftest import make_settings
from tests.support.pg import APP_ROLE
from tests.support.world import Tenant, login, make_product, make_tenant

pytestmark = pytest.mark.anyio

TENANT_OWNED = ("users", "auth_sessions", "refresh_tokens", "products")


def _insert_product(owner: str, tenant: Tenant, sku: str) -> uuid.UUID:
    product_id = uuid.uuid4()
    now = datetime.now(UTC)
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO products (tenant_id, id, seller_id, sku, name, description, category,"
            " price_amount, currency, stock, status, version, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, '', 'misc', 100, 'EUR', 1, 'active', 1, %s, %s)",
            (tenant.id, product_id, tenant["seller"].id, sku, f"{tenant.slug} {sku}", now, now),
        )
    return product_id


def _session_rows(owner: str, tenant: Tenant) -> None:
    """One session and refresh token per tenant, so every tenant-owned table has rows."""
    now = datetime.now(UTC)
    session_id = uuid.uuid4()
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO auth_sessions (tenant_id, id, user_id, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (tenant.id, session_id, tenant["shopper"].id, now, now + timedelta(days=30)),
        )
        conn.execute(
            "INSERT INTO refresh_tokens (tenant_id, id, session_id, user_id, token_hash,"
            " issued_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                tenant.id,
                uuid.uuid4(),
                session_id,
                tenant["shopper"].id,
                uuid.uuid4().bytes,
                now,
                now,
            ),
        )


@pytest.fixture
def tenants(clean_db: database.Conninfos) -> dict[str, Tenant]:
    out = {slug: make_tenant(clean_db.owner, slug) for slug in ("acme", "globex")}
    for tenant in out.values():
        _insert_product(clean_db.owner, tenant, "P-1")
        _insert_product(clean_db.owner, tenant, "P-2")
        _session_rows(clean_db.owner, tenant)
    return out


@pytest.fixture
async def single(clean_db: database.Conninfos) -> AsyncIterator[Database]:
    """The app role's database with exactly one pooled connection."""
    db = Database(make_pool(clean_db.app, size=1))
    yield db
    await db.dispose()


Conn = AsyncConnection[Any]


async def _scalar(conn: Conn, query: str) -> object:
    row = await (await conn.execute(query)).fetchone()
    assert row is not None
    value: object = row[0]
    return value


async def _pid(conn: Conn) -> int:
    pid = await _scalar(conn, "SELECT pg_backend_pid()")
    assert isinstance(pid, int)
    return pid


async def _tenants_seen(conn: Conn) -> dict[str, list[uuid.UUID]]:
    seen: dict[str, list[uuid.UUID]] = {}
    for table in TENANT_OWNED:
        cursor = await conn.execute(f"SELECT tenant_id FROM {table} ORDER BY tenant_id")  # noqa: S608
        seen[table] = [r[0] for r in await cursor.fetchall()]
    return seen


def _product_params(tenant: Tenant, sku: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "t": tenant.id,
        "id": uuid.uuid4(),
        "seller": tenant["seller"].id,
        "sku": sku,
        "now": now,
    }


_INSERT_PRODUCT = (
    "INSERT INTO products (tenant_id, id, seller_id, sku, name, description, category,"
    " price_amount, currency, stock, status, version, created_at, updated_at)"
    " VALUES (%(t)s, %(id)s, %(seller)s, %(sku)s, 'x', '', 'misc', 1, 'EUR', 1, 'active', 1,"
    " %(now)s, %(now)s)"
)
_MOVE_PRODUCTS = "UPDATE products SET tenant_id = %(other)s WHERE tenant_id = %(t)s"


async def _execute(
    db: Database,
    tenant_id: uuid.UUID | None,
    statement: str,
    params: dict[str, Any],
    pids: list[int],
) -> None:
    async with db.transaction(tenant_id) as conn:
        pids.append(await _pid(conn))
        await conn.execute(statement, params)


async def _crash_in_unit_of_work(db: Database, tenant_id: uuid.UUID, pids: list[int]) -> None:
    async with SqlUnitOfWork(db, tenant_id) as uow:
        pids.append(await _pid(uow.conn))
        raise RuntimeError("boom")


def _is_rls_refusal(exc: psycopg.Error) -> bool:
    return isinstance(exc, psycopg.errors.InsufficientPrivilege) and (
        "row-level security" in str(exc)
    )


async def test_one_pooled_connection_forgets_the_tenant_between_transactions(
    single: Database, tenants: dict[str, Tenant]
) -> None:
    acme, globex = tenants["acme"], tenants["globex"]

    async with single.transaction(acme.id) as conn:
        pid = await _pid(conn)
        seen = await _tenants_seen(conn)
    assert seen == {
        "users": [acme.id] * 4,
        "auth_sessions": [acme.id],
        "refresh_tokens": [acme.id],
        "products": [acme.id] * 2,
    }

    async with single.transaction(None) as conn:
        assert await _pid(conn) == pid
        assert await _tenants_seen(conn) == {table: [] for table in TENANT_OWNED}
        assert await _scalar(conn, "SELECT current_setting('app.tenant_id', true)") == ""

    pids: list[int] = []
    with pytest.raises(psycopg.Error) as refused:
        await _execute(single, None, _INSERT_PRODUCT, _product_params(acme, "SNEAK-1"), pids)
    assert _is_rls_refusal(refused.value), refused.value
    assert pids == [pid]

    async with single.transaction(globex.id) as conn:
        assert await _pid(conn) == pid
        seen = await _tenants_seen(conn)
        # A's rows cannot be changed either: they are invisible.
        updated = await conn.execute(
            "UPDATE products SET stock = 99 WHERE tenant_id = %(t)s", {"t": acme.id}
        )
        assert updated.rowcount == 0
    assert seen == {
        "users": [globex.id] * 4,
        "auth_sessions": [globex.id],
        "refresh_tokens": [globex.id],
        "products": [globex.id] * 2,
    }

    with pytest.raises(psycopg.Error) as cross:
        await _execute(single, globex.id, _INSERT_PRODUCT, _product_params(acme, "CROSS-1"), pids)
    assert _is_rls_refusal(cross.value), cross.value
    assert pids == [pid, pid]

    with pytest.raises(psycopg.Error) as moved:
        await _execute(
            single,
            globex.id,
            _MOVE_PRODUCTS,
            {"other": acme.id, "t": globex.id},
            pids,
        )
    assert _is_rls_refusal(moved.value), moved.value
    assert pids == [pid, pid, pid]

    async with single.transaction(acme.id) as conn:
        assert await _pid(conn) == pid
        stocks = await (
            await conn.execute("SELECT stock, sku FROM products ORDER BY sku")
        ).fetchall()
    assert [tuple(r) for r in stocks] == [(1, "P-1"), (1, "P-2")]


async def test_a_failed_or_uncommitted_unit_of_work_leaves_no_tenant_behind(
    single: Database, tenants: dict[str, Tenant]
) -> None:
    acme = tenants["acme"]
    async with SqlUnitOfWork(single, acme.id) as uow:
        pid = await _pid(uow.conn)
        assert len(await (await uow.conn.execute("SELECT id FROM products")).fetchall()) == 2
        # no commit: the unit of work rolls back

    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        await _crash_in_unit_of_work(single, acme.id, pids)
    assert pids == [pid]

    async with single.transaction(None) as conn:
        assert await _pid(conn) == pid
        assert await _tenants_seen(conn) == {table: [] for table in TENANT_OWNED}


async def test_the_tenant_setting_is_transaction_local(
    single: Database, tenants: dict[str, Tenant]
) -> None:
    """set_config(..., true): the setting is gone as soon as the transaction ends."""
    acme = tenants["acme"]
    async with single.transaction(acme.id) as conn:
        pid = await _pid(conn)
        local = await _scalar(conn, "SELECT current_setting('app.tenant_id', true)")
    assert local == str(acme.id)
    # Straight from the pool, bypassing Database: nothing of the last transaction remains.
    async with single.pool.connection() as conn:
        assert await _pid(conn) == pid
        after = await _scalar(conn, "SELECT current_setting('app.tenant_id', true)")
        await conn.rollback()
    assert after == ""


async def test_alternating_tenants_over_http_on_a_pool_of_one(
    clean_db: database.Conninfos, tmp_path: Path
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    globex = make_tenant(clean_db.owner, "globex")
    settings = make_settings(tmp_path, IMPEXTECH_DB_POOL_SIZE="1")
    app = create_app(settings, clean_db.app)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 4000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await login(client, acme["seller"])
            await login(client, globex["seller"])
            mine: dict[str, list[str]] = {"acme": [], "globex": []}
            for round_ in range(4):
                for tenant in (acme, globex):
                    product = await make_product(
                        client, tenant["seller"], f"{tenant.slug.upper()}-{round_}"
                    )
                    mine[tenant.slug].insert(0, str(product["id"]))
                for tenant, other in ((acme, globex), (globex, acme)):
                    anonymous = await client.get(
                        "/api/v1/products", headers={"X-Tenant": tenant.slug}
                    )
                    assert anonymous.status_code == 200, anonymous.text
                    assert [p["id"] for p in anonymous.json()["items"]] == mine[tenant.slug]
                    signed_in = await client.get("/api/v1/products", headers=tenant["seller"].auth)
                    assert [p["id"] for p in signed_in.json()["items"]] == mine[tenant.slug]
                    foreign = await client.get(
                        f"/api/v1/products/{mine[other.slug][0]}", headers=tenant["seller"].auth
                    )
                    assert foreign.status_code == 404, foreign.text
            me = await client.get("/api/v1/users/me", headers=acme["seller"].auth)
            assert me.json()["id"] == str(acme["seller"].id)
        with psycopg.connect(clean_db.owner) as conn:
            backends = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND usename = %s",
                (APP_ROLE,),
            ).fetchone()
        # Every request above went through the one pooled connection.
        assert backends == (1,)
    finally:
        await app.state.database.dispose()
