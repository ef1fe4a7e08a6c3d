"""Migrations from an empty database to head, down to base and up again, as the schema owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from impextech.platform import database
from tests.support.pg import APP_ROLE, OWNER_ROLE, scratch_database, superuser_of

TENANT_OWNED = {
    "users",
    "auth_sessions",
    "refresh_tokens",
    "products",
    "jobs",
    "password_reset_tokens",
}
QUEUE_MACHINERY = {
    "procrastinate_jobs",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
    "procrastinate_events",
}
GLOBAL = {"tenants", "rate_limit_counters"} | QUEUE_MACHINERY
APPLICATION_TABLES = TENANT_OWNED | GLOBAL
CURRENT_TENANT = (
    "(tenant_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)"
)


@pytest.fixture
def empty_db(db: database.Conninfos) -> Iterator[database.Conninfos]:
    """A second, empty database on the session's cluster, owned by the test owner role."""
    with scratch_database(superuser_of(db.owner), "impextech_migr") as infos:
        yield infos


def _tables(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _structure(owner: str) -> dict[str, object]:
    """Columns, constraints, indexes, policies and grants: compared across a down-and-up."""
    with psycopg.connect(owner) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns WHERE table_schema = 'public'"
                " ORDER BY table_name, ordinal_position"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "policies": conn.execute(
                "SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check"
                " FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "grants": conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = %s ORDER BY 1, 2",
                (APP_ROLE,),
            ).fetchall(),
        }


def _assert_at_head(infos: database.Conninfos) -> None:
    assert database.current_revision(infos.owner) == database.head_revision()
    with psycopg.connect(infos.owner) as conn:
        assert _tables(conn) == APPLICATION_TABLES | {"alembic_version"}

        security = {
            str(r[0]): (bool(r[1]), bool(r[2]))
            for r in conn.execute(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            ).fetchall()
        }
        for table in TENANT_OWNED:
            assert security[table] == (True, True), table
        for table in GLOBAL:
            assert security[table] == (False, False), table

        policies = conn.execute(
            "SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check"
            " FROM pg_policies WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        assert policies == [
            (
                table,
                "tenant_isolation",
                "PERMISSIVE",
                "{public}",
                "ALL",
                CURRENT_TENANT,
                CURRENT_TENANT,
            )
            for table in sorted(TENANT_OWNED)
        ]

        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
            " pg_has_role(%s, %s, 'MEMBER') FROM pg_roles WHERE rolname = %s",
            (APP_ROLE, OWNER_ROLE, APP_ROLE),
        ).fetchone()
        assert role == (False, False, False, False, False)
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = %s",
            (APP_ROLE,),
        ).fetchall()
        assert owned == []
        owners = {
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        assert owners == {OWNER_ROLE}

        privileges = {
            table: tuple(
                bool(
                    conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)", (APP_ROLE, table, privilege)
                    ).fetchone()[0]  # type: ignore[index]
                )
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            )
            for table in sorted(APPLICATION_TABLES | {"alembic_version"})
        }
        assert privileges == {
            "alembic_version": (True, False, False, False, False),
            "auth_sessions": (True, True, True, True, False),
            "jobs": (True, True, True, False, False),
            "password_reset_tokens": (True, True, True, False, False),
            **dict.fromkeys(QUEUE_MACHINERY, (True, True, True, True, False)),
            "products": (True, True, True, False, False),
            "rate_limit_counters": (True, True, True, True, False),
            "refresh_tokens": (True, True, True, True, False),
            "tenants": (True, False, False, False, False),
            "users": (True, True, True, False, False),
        }


def test_upgrade_from_empty_to_head_secures_every_tenant_table(
    empty_db: database.Conninfos,
) -> None:
    with psycopg.connect(empty_db.owner) as conn:
        assert _tables(conn) == set()

    database.upgrade(empty_db.owner, APP_ROLE)

    _assert_at_head(empty_db)
    with psycopg.connect(empty_db.owner) as conn:
        row = conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'procrastinate_jobs'"
        ).fetchone()
    assert row is not None
    # The queue table is vacuumed and analyzed every 1,000 changes, whatever its size.
    assert "autovacuum_analyze_threshold=1000" in row[0]
    assert "autovacuum_analyze_scale_factor=0.0" in row[0]


def test_the_app_role_sees_and_writes_nothing_without_a_tenant(
    empty_db: database.Conninfos,
) -> None:
    database.upgrade(empty_db.owner, APP_ROLE)
    tenant = uuid.uuid4()
    with psycopg.connect(empty_db.owner) as conn:
        conn.execute(
            "INSERT INTO tenants (id, slug, name, status, created_at)"
            " VALUES (%s, 'acme', 'Acme', 'active', now())",
            (tenant,),
        )
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        conn.execute(
            "INSERT INTO users (tenant_id, id, email, display_name, role, status, password_hash,"
            " created_at, updated_at) VALUES (%s, %s, 'a@acme.example', 'A', 'shopper', 'active',"
            " 'x', now(), now())",
            (tenant, uuid.uuid4()),
        )
    with psycopg.connect(empty_db.app) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO tenants (id, slug, name, status, created_at)"
                " VALUES (%s, 'evil', 'Evil', 'active', now())",
                (uuid.uuid4(),),
            )
    for statement in (
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON users",
        "DELETE FROM users",
        "TRUNCATE products",
    ):
        with (
            psycopg.connect(empty_db.app) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement)
    with psycopg.connect(empty_db.app) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        assert conn.execute("SELECT email FROM users").fetchall() == [("a@acme.example",)]


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(
    empty_db: database.Conninfos,
) -> None:
    database.upgrade(empty_db.owner, APP_ROLE)
    first = _structure(empty_db.owner)

    database.downgrade(empty_db.owner, APP_ROLE, "base")

    with psycopg.connect(empty_db.owner) as conn:
        assert _tables(conn) - {"alembic_version"} == set()
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
        ).fetchone() == (0,)
        leftovers = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relname NOT LIKE 'alembic_version%'"
        ).fetchall()
        assert leftovers == []
    assert database.current_revision(empty_db.owner) is None

    database.upgrade(empty_db.owner, APP_ROLE)

    _assert_at_head(empty_db)
    assert _structure(empty_db.owner) == first

    # At head, upgrading again is a no-op.
    database.upgrade(empty_db.owner, APP_ROLE)
    assert _structure(empty_db.owner) == first
    assert database.current_revision(empty_db.owner) == database.head_revision()
