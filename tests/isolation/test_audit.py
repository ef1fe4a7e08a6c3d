"""The tenancy audit over the migrated schema, and over one deliberate breach at a time.

Each breach is made inside a transaction that is rolled back (PostgreSQL DDL, and even
ALTER ROLE, is transactional), so the session's database is left exactly as it was.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from impextech.platform import database, tenancy
from impextech.platform.tenancy import audit
from tests.support.pg import APP_ROLE, OWNER_ROLE, scratch_database, superuser_of

FOUNDATION_SCOPED = ("auth_sessions", "products", "refresh_tokens", "users")


def _superuser_here(infos: database.Conninfos) -> str:
    """A superuser connection to the session's database itself (not to ``postgres``)."""
    params = conninfo_to_dict(superuser_of(infos.owner))
    return make_conninfo("", **{**params, "dbname": conninfo_to_dict(infos.owner)["dbname"]})


def _columns_named_tenant_id(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def test_the_migrated_schema_passes_every_check(db: database.Conninfos) -> None:
    with psycopg.connect(db.owner) as conn:
        report = audit(conn, APP_ROLE)
        scoped = _columns_named_tenant_id(conn)
        tables = {
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }

    assert report.failures == ()
    assert report.ok
    assert set(FOUNDATION_SCOPED) <= scoped
    assert tables == scoped | (tables & set(tenancy.global_tables()))
    by_check: dict[str, set[str]] = {}
    for finding in report.findings:
        by_check.setdefault(finding.check, set()).add(finding.subject)
    assert by_check[tenancy.SCOPE] == tables
    for check in (tenancy.RLS_ENABLED, tenancy.RLS_FORCED, tenancy.POLICY, tenancy.COMPOSITE_FK):
        assert by_check[check] == scoped, check
    for check in (
        tenancy.ROLE_SUPERUSER,
        tenancy.ROLE_BYPASSRLS,
        tenancy.ROLE_OWNS,
        tenancy.ROLE_MEMBER,
    ):
        assert by_check[check] == {APP_ROLE}, check
    details = {(f.check, f.subject): f.detail for f in report.findings}
    assert details[(tenancy.COMPOSITE_FK, "refresh_tokens")] == "2 include tenant_id"
    assert details[(tenancy.SCOPE, "tenants")] == "global: the tenant registry itself (identity)"


BREACHES: dict[str, tuple[list[str], set[tuple[str, str]]]] = {
    "rls-disabled": (
        ["ALTER TABLE products DISABLE ROW LEVEL SECURITY"],
        {(tenancy.RLS_ENABLED, "products")},
    ),
    "rls-not-forced": (
        ["ALTER TABLE users NO FORCE ROW LEVEL SECURITY"],
        {(tenancy.RLS_FORCED, "users")},
    ),
    "table-without-tenant-id": (
        ["CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL)"],
        {(tenancy.SCOPE, "notes")},
    ),
    "nullable-tenant-id": (
        ["CREATE TABLE notes (tenant_id uuid, id uuid PRIMARY KEY)"],
        {
            (tenancy.SCOPE, "notes"),
            (tenancy.RLS_ENABLED, "notes"),
            (tenancy.RLS_FORCED, "notes"),
            (tenancy.POLICY, "notes"),
        },
    ),
    "materialized-view": (
        ["CREATE MATERIALIZED VIEW product_names AS SELECT tenant_id, name FROM products"],
        {(tenancy.SCOPE, "product_names")},
    ),
    "table-in-another-schema": (
        ["CREATE SCHEMA extra", "CREATE TABLE extra.notes (id int)"],
        {(tenancy.SCOPE, "extra.notes")},
    ),
    "partition-without-rls": (
        [
            "CREATE TABLE parted (tenant_id uuid NOT NULL, id uuid) PARTITION BY HASH (id)",
            "ALTER TABLE parted ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE parted FORCE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_isolation ON parted USING"
            " (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)",
            # Queried directly, a partition answers by its own policies, not its parent's.
            "CREATE TABLE parted_0 PARTITION OF parted FOR VALUES WITH (MODULUS 1, REMAINDER 0)",
        ],
        {
            (tenancy.RLS_ENABLED, "parted_0"),
            (tenancy.RLS_FORCED, "parted_0"),
            (tenancy.POLICY, "parted_0"),
        },
    ),
    "policy-dropped": (
        ["DROP POLICY tenant_isolation ON refresh_tokens"],
        {(tenancy.POLICY, "refresh_tokens")},
    ),
    "permissive-policy-not-keyed-on-the-tenant": (
        ["CREATE POLICY everything ON products USING (true)"],
        {(tenancy.POLICY, "products")},
    ),
    "foreign-key-without-tenant": (
        [
            "ALTER TABLE products ADD CONSTRAINT products_seller_loose"
            " FOREIGN KEY (seller_id) REFERENCES users (id)"
        ],
        {(tenancy.COMPOSITE_FK, "products")},
    ),
    "app-role-bypasses-rls": (
        [f"ALTER ROLE {APP_ROLE} BYPASSRLS"],
        {(tenancy.ROLE_BYPASSRLS, APP_ROLE)},
    ),
    "app-role-superuser": (
        [f"ALTER ROLE {APP_ROLE} SUPERUSER"],
        # A superuser is a member of every role, the owners included.
        {(tenancy.ROLE_SUPERUSER, APP_ROLE), (tenancy.ROLE_MEMBER, APP_ROLE)},
    ),
    "app-role-owns-a-table": (
        [f"ALTER TABLE products OWNER TO {APP_ROLE}"],
        {(tenancy.ROLE_OWNS, APP_ROLE)},
    ),
    "app-role-may-become-the-owner": (
        [f"GRANT {OWNER_ROLE} TO {APP_ROLE}"],
        {(tenancy.ROLE_MEMBER, APP_ROLE)},
    ),
}


@pytest.mark.parametrize("breach", sorted(BREACHES))
def test_each_breach_fails_the_audit_naming_the_offender(
    db: database.Conninfos, breach: str
) -> None:
    statements, expected = BREACHES[breach]
    with psycopg.connect(_superuser_here(db)) as conn:
        try:
            for statement in statements:
                conn.execute(statement)
            report = audit(conn, APP_ROLE)
        finally:
            conn.rollback()

    assert not report.ok
    assert {(f.check, f.subject) for f in report.failures} == expected
    # The breach is gone with the rollback.
    with psycopg.connect(db.owner) as conn:
        assert audit(conn, APP_ROLE).ok


def test_an_unknown_app_role_fails(db: database.Conninfos) -> None:
    with psycopg.connect(db.owner) as conn:
        report = audit(conn, "no_such_role")
    assert [(f.check, f.subject, f.detail) for f in report.failures] == [
        (tenancy.ROLE_EXISTS, "no_such_role", "no such role")
    ]


def test_an_unmigrated_database_fails_rather_than_passing_vacuously(
    db: database.Conninfos,
) -> None:
    with (
        scratch_database(superuser_of(db.owner), "impextech_audit_empty") as empty,
        psycopg.connect(empty.owner) as conn,
    ):
        report = audit(conn, APP_ROLE)
    assert [(f.check, f.ok) for f in report.findings if f.check == tenancy.ANY_SCOPED] == [
        (tenancy.ANY_SCOPED, False)
    ]
    assert not report.ok
