"""Which tables are global on purpose, and an audit of a live database's tenant walls.

Every other table must be tenant-scoped: ``tenant_id NOT NULL``, row-level security enabled
and FORCED, every policy keyed on the transaction-local ``app.tenant_id``, and every foreign key
to another scoped table carrying ``tenant_id`` on both sides. The application role must own
nothing and be neither superuser nor BYPASSRLS (nor able to become such a role).

``audit`` returns plain data; printing it is the command line's job (``impextech audit tenancy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

TENANT_COLUMN = "tenant_id"
TENANT_SETTING = "app.tenant_id"

# Global on purpose, each with the reason: the platform's own, then each context's
# (``Context.global_tables``). Anything not here must be tenant-scoped.
PLATFORM_GLOBAL_TABLES: Mapping[str, str] = {
    "alembic_version": "the schema's migration revision",
}


def global_tables() -> dict[str, str]:
    from impextech.platform.contexts import CONTEXTS

    tables = dict(PLATFORM_GLOBAL_TABLES)
    for context in CONTEXTS:
        for table, reason in context.global_tables.items():
            if table in tables:
                raise ValueError(f"table {table!r} is declared global twice")
            tables[table] = f"{reason} ({context.name})"
    return tables


# Check names, in the order they are reported.
SCOPE = "scoped or allowlisted"
RLS_ENABLED = "rls enabled"
RLS_FORCED = "rls forced"
POLICY = "tenant policy"
COMPOSITE_FK = "composite foreign keys"
ROLE_EXISTS = "app role exists"
ROLE_SUPERUSER = "app role not superuser"
ROLE_BYPASSRLS = "app role not bypassrls"
ROLE_OWNS = "app role owns nothing"
ROLE_MEMBER = "app role cannot become a privileged role"
ANY_SCOPED = "scoped tables present"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    subject: str  # a table name, or the app role's name
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.ok)


@dataclass(frozen=True, slots=True)
class _Table:
    oid: int
    name: str  # bare in the public schema, schema-qualified elsewhere
    kind: str  # r: table, p: partitioned table, m: materialized view (partitions are tables)
    tenant_not_null: bool | None  # None: no tenant_id column
    rls: bool
    forced: bool


_TABLES = """
SELECT c.oid,
       CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
       c.relkind,
       a.attnotnull,
       c.relrowsecurity,
       c.relforcerowsecurity
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a
         ON a.attrelid = c.oid AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%%'
   AND n.nspname NOT LIKE 'pg\\_temp%%'
 ORDER BY 2
"""

_POLICIES = """
SELECT polrelid, polname, polpermissive,
       coalesce(pg_get_expr(polqual, polrelid), ''),
       coalesce(pg_get_expr(polwithcheck, polrelid), '')
  FROM pg_policy
"""

# Each foreign key as (table, referenced table, [(column, referenced column), ...]).
_FOREIGN_KEYS = """
SELECT con.conrelid, con.confrelid, con.conname,
       array_agg(a.attname ORDER BY k.ord), array_agg(fa.attname ORDER BY k.ord)
  FROM pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, fcol, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
  JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fcol
 WHERE con.contype = 'f'
 GROUP BY con.conrelid, con.confrelid, con.conname
"""

_ROLE = "SELECT oid, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s"

_OWNED = """
SELECT 'table ' || c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relowner = %(oid)s AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = %(oid)s
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proowner = %(oid)s AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'database ' || datname FROM pg_database
 WHERE datdba = %(oid)s AND datname = current_database()
ORDER BY 1
"""

# Roles the app role could act as (SET ROLE or inheritance) that bypass RLS or own a table.
_PRIVILEGED_MEMBERSHIPS = """
SELECT r.rolname FROM pg_roles r
 WHERE r.oid <> %(oid)s
   AND pg_has_role(%(oid)s, r.oid, 'MEMBER')
   AND (r.rolsuper OR r.rolbypassrls OR EXISTS (
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relowner = r.oid AND n.nspname NOT IN ('pg_catalog', 'information_schema')))
 ORDER BY 1
"""


def _keyed_on_tenant(expression: str) -> bool:
    """A policy expression that compares tenant_id with the transaction-local setting."""
    return TENANT_COLUMN in expression and TENANT_SETTING in expression


def audit(
    conn: psycopg.Connection[Any],
    app_role: str,
    allowlist: Mapping[str, str] | None = None,
) -> AuditReport:
    """Check the database ``conn`` is connected to (any role may read the catalog)."""
    if allowlist is None:
        allowlist = global_tables()
    tables = [
        _Table(int(r[0]), str(r[1]), str(r[2]), r[3], bool(r[4]), bool(r[5]))
        for r in conn.execute(_TABLES, {"column": TENANT_COLUMN}).fetchall()
    ]
    policies: dict[int, list[tuple[str, bool, str, str]]] = {}
    for oid, name, permissive, using, check in conn.execute(_POLICIES).fetchall():
        policies.setdefault(int(oid), []).append((str(name), bool(permissive), using, check))
    foreign_keys: dict[int, list[tuple[int, str, list[str], list[str]]]] = {}
    for conrelid, confrelid, name, cols, fcols in conn.execute(_FOREIGN_KEYS).fetchall():
        foreign_keys.setdefault(int(conrelid), []).append(
            (int(confrelid), str(name), list(cols), list(fcols))
        )

    findings: list[Finding] = []
    scoped: dict[int, _Table] = {}
    for table in tables:
        if table.name in allowlist:
            findings.append(Finding(SCOPE, table.name, True, f"global: {allowlist[table.name]}"))
        elif table.kind == "m":
            findings.append(
                Finding(SCOPE, table.name, False, "materialized view: RLS never applies")
            )
        elif table.tenant_not_null is None:
            findings.append(
                Finding(SCOPE, table.name, False, "no tenant_id column and not on the allowlist")
            )
        elif not table.tenant_not_null:
            findings.append(Finding(SCOPE, table.name, False, "tenant_id is nullable"))
            scoped[table.oid] = table
        else:
            findings.append(Finding(SCOPE, table.name, True, "tenant_id NOT NULL"))
            scoped[table.oid] = table

    findings.append(
        Finding(
            ANY_SCOPED,
            "(schema)",
            bool(scoped),
            f"{len(scoped)} tenant-scoped table(s)" if scoped else "none: is the schema migrated?",
        )
    )
    for table in scoped.values():
        findings.append(
            Finding(RLS_ENABLED, table.name, table.rls, "enabled" if table.rls else "DISABLED")
        )
        findings.append(
            Finding(
                RLS_FORCED,
                table.name,
                table.forced,
                "forced (applies to the owner too)" if table.forced else "NOT forced",
            )
        )
        findings.append(_policy_finding(table, policies.get(table.oid, [])))
        findings.append(_fk_finding(table, foreign_keys.get(table.oid, []), scoped))
    findings.extend(_role_findings(conn, app_role))
    return AuditReport(tuple(findings))


def _policy_finding(table: _Table, policies: list[tuple[str, bool, str, str]]) -> Finding:
    if not policies:
        return Finding(POLICY, table.name, False, "no policy")
    loose = [
        name
        for name, permissive, using, check in policies
        # A permissive policy not keyed on the tenant would widen what every other one allows.
        if permissive and not (_keyed_on_tenant(using) and (not check or _keyed_on_tenant(check)))
    ]
    if loose:
        return Finding(
            POLICY, table.name, False, f"policy not keyed on {TENANT_SETTING}: {', '.join(loose)}"
        )
    if not any(permissive for _, permissive, _, _ in policies):
        return Finding(POLICY, table.name, False, "only restrictive policies: nothing is visible")
    return Finding(POLICY, table.name, True, ", ".join(name for name, *_ in policies))


def _fk_finding(
    table: _Table,
    keys: list[tuple[int, str, list[str], list[str]]],
    scoped: dict[int, _Table],
) -> Finding:
    bad: list[str] = []
    checked = 0
    for target, name, cols, fcols in keys:
        if target not in scoped:
            continue  # e.g. tenant_id -> tenants(id): the registry is global
        checked += 1
        if (TENANT_COLUMN, TENANT_COLUMN) not in zip(cols, fcols, strict=True):
            bad.append(f"{name} -> {scoped[target].name}")
    if bad:
        return Finding(
            COMPOSITE_FK, table.name, False, f"without {TENANT_COLUMN}: {', '.join(bad)}"
        )
    return Finding(
        COMPOSITE_FK,
        table.name,
        True,
        f"{checked} include {TENANT_COLUMN}" if checked else "none to scoped tables",
    )


def _role_findings(conn: psycopg.Connection[Any], role: str) -> list[Finding]:
    row = conn.execute(_ROLE, (role,)).fetchone()
    if row is None:
        return [Finding(ROLE_EXISTS, role, False, "no such role")]
    oid, superuser, bypass = int(row[0]), bool(row[1]), bool(row[2])
    owned = [str(r[0]) for r in conn.execute(_OWNED, {"oid": oid}).fetchall()]
    members = [str(r[0]) for r in conn.execute(_PRIVILEGED_MEMBERSHIPS, {"oid": oid}).fetchall()]
    return [
        Finding(ROLE_SUPERUSER, role, not superuser, "SUPERUSER" if superuser else "nosuperuser"),
        Finding(ROLE_BYPASSRLS, role, not bypass, "BYPASSRLS" if bypass else "nobypassrls"),
        Finding(ROLE_OWNS, role, not owned, ", ".join(owned) if owned else "nothing"),
        Finding(
            ROLE_MEMBER,
            role,
            not members,
            f"member of {', '.join(members)}" if members else "no such membership",
        ),
    ]


def audit_database(conninfo: str, app_role: str) -> AuditReport:
    """Audit the database at ``conninfo`` (read-only; the transaction is rolled back)."""
    with psycopg.connect(conninfo) as conn:
        try:
            return audit(conn, app_role)
        finally:
            conn.rollback()
