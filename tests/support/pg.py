"""A private PostgreSQL database for the test session (embedded, or TEST_DATABASE_URL's)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from impextech.platform import database

APP_ROLE = "impextech_app"
OWNER_ROLE = "impextech_test_owner"
TENANT_TABLES = (
    "password_reset_tokens",
    "jobs",
    "refresh_tokens",
    "auth_sessions",
    "products",
    "users",
    "tenants",
)
QUEUE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def superuser_of(conninfo: str) -> str:
    """A superuser connection to the same cluster (trust auth on the embedded one)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY oid LIMIT 1"
        ).fetchone()
    assert row is not None
    params = {k: v for k, v in conninfo_to_dict(conninfo).items() if k != "password"}
    return make_conninfo("", **{**params, "user": str(row[0]), "dbname": "postgres"})


@contextmanager
def scratch_database(superuser: str, prefix: str) -> Iterator[database.Conninfos]:
    """A new, empty database owned by the test owner role, with the app role; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        for role in (OWNER_ROLE, APP_ROLE):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(
                        sql.Identifier(role)
                    )
                )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(OWNER_ROLE)
            )
        )
    base = {k: v for k, v in conninfo_to_dict(superuser).items() if k != "password"}
    infos = database.Conninfos(
        owner=make_conninfo("", **{**base, "dbname": name, "user": OWNER_ROLE}),
        app=make_conninfo("", **{**base, "dbname": name, "user": APP_ROLE}),
    )
    try:
        yield infos
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def test_database(workdir: Path) -> Iterator[database.Conninfos]:
    """The session's database: on TEST_DATABASE_URL's server, or the embedded cluster.

    The embedded cluster is stopped when the block ends, before anyone deletes its directory:
    a postmaster whose directory is gone runs on with no one left to stop it.
    """
    configured = os.environ.get("TEST_DATABASE_URL")
    superuser = configured or database.start_embedded(workdir)
    try:
        with scratch_database(superuser, "impextech_test") as infos:
            yield infos
    finally:
        if not configured:
            database.stop_embedded(workdir)


def postmasters_of(pgdata: Path) -> list[int]:
    """The pids of the postmasters serving ``pgdata``, found by their command line in /proc.

    Works after the directory is deleted, when its postmaster.pid is gone with it.
    """
    wanted = os.path.realpath(pgdata)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile, or a zombie
            continue
        if Path(argv[0]).name != "postgres" or "-D" not in argv[:-1]:
            continue
        if os.path.realpath(argv[argv.index("-D") + 1]) == wanted:
            found.append(int(entry.name))
    return found


def assert_no_postmaster(pgdata: Path, within: float = 5.0) -> None:
    """Fail unless no postmaster serves ``pgdata`` (allowing ``within`` seconds to exit)."""
    deadline = time.monotonic() + within
    while (found := postmasters_of(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found == [], f"PostgreSQL still runs on {pgdata}: pids {found}"


def truncate_all(owner: str) -> None:
    with psycopg.connect(owner, autocommit=True) as conn:
        tables = ", ".join((*TENANT_TABLES, *QUEUE_TABLES, "rate_limit_counters"))
        conn.execute(f"TRUNCATE {tables} CASCADE")


def snapshot(owner: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order: compare before and after a refused request."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with psycopg.connect(owner) as conn:
        # The owner is subject to FORCE RLS too, so read each tenant's rows under its context.
        tenants = [r[0] for r in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()]
        out["tenants"] = conn.execute("SELECT * FROM tenants ORDER BY id").fetchall()
        for table in TENANT_TABLES[:-1]:
            rows: list[tuple[object, ...]] = []
            for tenant in tenants:
                with conn.transaction():
                    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
                    rows.extend(
                        conn.execute(
                            sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
                        ).fetchall()
                    )
            out[table] = rows
    return out
