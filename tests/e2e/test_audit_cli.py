"""`impextech audit tenancy` as CI runs it: the installed command against a live database."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from impextech.platform import database, tenancy
from tests.e2e.conftest import CLI, cli_env
from tests.support.pg import APP_ROLE, scratch_database, superuser_of

ROW = re.compile(r"^│\s*(?P<check>[^│]+?)\s*│\s*(?P<table>[^│]+?)\s*│\s*(?P<result>pass|FAIL)\s*│")


def _audit(infos: database.Conninfos, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "audit", "tenancy"],
        capture_output=True,
        text=True,
        cwd=data_dir,
        env=cli_env(infos, data_dir / "data", IMPEXTECH_LOG_FORMAT="json"),
        timeout=60,
        check=False,
    )


def _rows(stdout: str) -> set[tuple[str, str, str]]:
    found = (ROW.match(line) for line in stdout.splitlines())
    return {(m["check"], m["table"], m["result"]) for m in found if m}


def _scoped_tables(owner: str) -> set[str]:
    with psycopg.connect(owner) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_the_migrated_schema_passes(e2e_db: database.Conninfos, tmp_path: Path) -> None:
    result = _audit(e2e_db, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    rows = _rows(result.stdout)
    assert rows, result.stdout
    assert {r[2] for r in rows} == {"pass"}
    scoped = _scoped_tables(e2e_db.owner)
    assert {"users", "auth_sessions", "refresh_tokens", "products"} <= scoped
    for table in scoped:
        for check in (
            tenancy.SCOPE,
            tenancy.RLS_ENABLED,
            tenancy.RLS_FORCED,
            tenancy.POLICY,
            tenancy.COMPOSITE_FK,
        ):
            assert (check, table, "pass") in rows, (check, table)
    assert (tenancy.SCOPE, "tenants", "pass") in rows
    assert (tenancy.SCOPE, "alembic_version", "pass") in rows
    for check in (tenancy.ROLE_SUPERUSER, tenancy.ROLE_BYPASSRLS, tenancy.ROLE_OWNS):
        assert (check, APP_ROLE, "pass") in rows
    assert result.stdout.rstrip().splitlines()[-1] == f"tenancy audit passed: {len(rows)} checks"


@pytest.fixture
def breached(db: database.Conninfos) -> Iterator[database.Conninfos]:
    """A migrated scratch database with four breaches, and an app role that bypasses RLS."""
    superuser = superuser_of(db.owner)
    role = f"impextech_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(role)))
    try:
        with scratch_database(superuser, "impextech_audit") as infos:
            database.upgrade(infos.owner, APP_ROLE)
            with psycopg.connect(infos.owner) as conn:
                conn.execute("ALTER TABLE products DISABLE ROW LEVEL SECURITY")
                conn.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
                conn.execute("CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL)")
            app = make_conninfo("", **{**conninfo_to_dict(infos.app), "user": role})
            yield database.Conninfos(owner=infos.owner, app=app)
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_breached_database_fails_naming_each_offender(
    breached: database.Conninfos, tmp_path: Path
) -> None:
    role = conninfo_to_dict(breached.app)["user"]

    result = _audit(breached, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    failed = {(c, t) for c, t, r in _rows(result.stdout) if r == "FAIL"}
    assert failed == {
        (tenancy.RLS_ENABLED, "products"),
        (tenancy.RLS_FORCED, "users"),
        (tenancy.SCOPE, "notes"),
        (tenancy.ROLE_BYPASSRLS, role),
    }
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("impextech: error: tenancy audit failed, 4 of "), lines[0]
    for offender in (
        "products: rls enabled (DISABLED)",
        "users: rls forced (NOT forced)",
        "notes: scoped or allowlisted (no tenant_id column and not on the allowlist)",
        f"{role}: app role not bypassrls (BYPASSRLS)",
    ):
        assert offender in lines[0], offender


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    nowhere = database.Conninfos(
        owner="host=127.0.0.1 port=9 dbname=x user=x connect_timeout=2",
        app="host=127.0.0.1 port=9 dbname=x user=x connect_timeout=2",
    )
    result = _audit(nowhere, tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("impextech: error: cannot reach the database: "), lines[0]


def test_a_malformed_app_connection_string_is_one_line(
    e2e_db: database.Conninfos, tmp_path: Path
) -> None:
    result = _audit(database.Conninfos(owner=e2e_db.owner, app="host=x bogus"), tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "impextech: error: IMPEXTECH_APP_DATABASE_URL is not a valid connection string"
    ), lines[0]
