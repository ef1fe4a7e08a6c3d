"""The second wall on its own: direct SQL as the application role, table by table.

The scoped tables come from the catalog, so a new tenant-owned table is attacked as soon as a
migration adds it (and fails here until the seeding below gives it rows of both tenants).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from impextech.platform import database
from tests.isolation.battlefield import (
    ATTACKER,
    VICTIM,
    insert_jobs,
    insert_reset_token,
    scoped_tables,
    tenant_rows,
)
from tests.support.world import Tenant, make_product

pytestmark = pytest.mark.anyio

Conn = psycopg.Connection[Any]


@pytest.fixture
async def both(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: database.Conninfos
) -> dict[str, Tenant]:
    """Rows of both tenants in every scoped table (sessions and tokens come from the logins)."""
    for tenant in world.values():
        await make_product(client, tenant["seller"], f"{tenant.slug.upper()}-SQL-1")
        insert_jobs(clean_db.owner, tenant)
        insert_reset_token(clean_db.owner, tenant)
    return world


def _set(conn: Conn, tenant_id: uuid.UUID | None) -> None:
    conn.execute(
        "SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id) if tenant_id else "",)
    )


def _one_row(owner: str, table: str, tenant_id: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(owner) as conn:
        _set(conn, tenant_id)
        row = conn.execute(
            sql.SQL("SELECT to_jsonb(t) FROM {} t LIMIT 1").format(sql.Identifier(table))
        ).fetchone()
    assert row is not None, f"no row of {tenant_id} in {table}"
    value: dict[str, Any] = row[0]
    return value


def _writable_columns(conn: Conn, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _insert_copy(conn: Conn, table: str, row: dict[str, Any]) -> None:
    """Insert a copy of ``row`` under a new id (so only row-level security can refuse it)."""
    columns = _writable_columns(conn, table)
    copy = {**row, "id": str(uuid.uuid4())}
    statement = sql.SQL(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::{t}, %s)"
    ).format(t=sql.Identifier(table), cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
    conn.execute(statement, (psycopg.types.json.Jsonb(copy),))


def _refused(conn: Conn, table: str, privilege: str, exc: psycopg.Error) -> str | None:
    """None if ``exc`` is the refusal expected; else what is wrong with it."""
    if not isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"{type(exc).__name__}: {exc}"
    granted = conn.execute("SELECT has_table_privilege(current_user, %s, %s)", (table, privilege))
    if granted.fetchone() == (True,) and "row-level security" not in str(exc):
        return f"refused, but not by row-level security: {exc}"
    return None


async def test_as_the_app_role_each_scoped_table_shows_and_takes_only_the_tenant_set(
    both: dict[str, Tenant], clean_db: database.Conninfos
) -> None:
    victim, attacker = both[VICTIM], both[ATTACKER]
    with psycopg.connect(clean_db.owner) as conn:
        tables = scoped_tables(conn)
    assert {"users", "auth_sessions", "refresh_tokens", "products", "jobs"} <= set(tables)
    rows_of = {t.slug: tenant_rows(clean_db.owner, t.id) for t in (victim, attacker)}
    for table in tables:
        for slug in (VICTIM, ATTACKER):
            assert rows_of[slug][table], f"seed rows of {slug} in {table} (the `both` fixture)"
    problems: list[str] = []

    with psycopg.connect(clean_db.app, autocommit=True) as conn:
        for table in tables:
            name = sql.Identifier(table)
            count = sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY 1").format(name)
            with conn.transaction():
                _set(conn, attacker.id)
                seen = conn.execute(count).fetchall()
            if seen != [(attacker.id, len(rows_of[ATTACKER][table]))]:
                problems.append(f"{table} with B set shows {seen}")
            for unset in ("SELECT 1", "SELECT set_config('app.tenant_id', '', true)"):
                with conn.transaction():
                    conn.execute(unset)
                    nothing = conn.execute(count).fetchall()
                if nothing != []:
                    problems.append(f"{table} with no tenant set shows {nothing}")

            for tenant_set, row_of in ((attacker.id, victim), (None, attacker)):
                row = _one_row(clean_db.owner, table, row_of.id)
                try:
                    with conn.transaction():
                        _set(conn, tenant_set)
                        _insert_copy(conn, table, row)
                    problems.append(f"{table}: inserted {row_of.slug}'s row with {tenant_set} set")
                except psycopg.Error as exc:
                    if wrong := _refused(conn, table, "INSERT", exc):
                        problems.append(f"{table} insert: {wrong}")

            move = sql.SQL("UPDATE {} SET tenant_id = %s").format(name)
            try:
                with conn.transaction():
                    _set(conn, attacker.id)
                    conn.execute(move, (victim.id,))
                problems.append(f"{table}: moved B's rows to A")
            except psycopg.Error as exc:
                if wrong := _refused(conn, table, "UPDATE", exc):
                    problems.append(f"{table} update: {wrong}")

            for statement in (
                sql.SQL("UPDATE {} SET tenant_id = tenant_id WHERE tenant_id = %s"),
                sql.SQL("DELETE FROM {} WHERE tenant_id = %s"),
            ):
                try:
                    with conn.transaction():
                        _set(conn, attacker.id)
                        touched = conn.execute(statement.format(name), (victim.id,)).rowcount
                    if touched != 0:
                        problems.append(f"{table}: {statement.as_string(conn)} touched {touched}")
                except psycopg.errors.InsufficientPrivilege:
                    pass  # no DELETE grant at all: refused before row-level security

    assert not problems, "\n".join(problems)
    for tenant in (victim, attacker):
        assert tenant_rows(clean_db.owner, tenant.id) == rows_of[tenant.slug]
