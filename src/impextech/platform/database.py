"""Where the database is, who connects as what, and the schema's migrations.

Two roles: migrations run as the owner; the application connects as a role that owns nothing
and has neither superuser nor BYPASSRLS, so row-level security always applies to it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from impextech.platform import embedded
from impextech.platform.settings import PlatformSettings, Settings

log = logging.getLogger(__name__)

EMBEDDED_DB = "impextech"
EMBEDDED_OWNER = "impextech_owner"


@dataclass(frozen=True)
class Conninfos:
    owner: str
    app: str


class DatabaseSetupError(Exception):
    """The database could not be reached or prepared; the message says why, in one line."""


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the private cluster under ``data_dir/pg``; its superuser conninfo.

    This process counts as one of the cluster's users from now on: the cluster stops when the
    last user ends or calls `stop_embedded` (see impextech.platform.embedded).
    """
    pgdata = data_dir / "pg"
    try:
        return embedded.attach(pgdata)
    except embedded.EmbeddedStartError as exc:
        raise DatabaseSetupError(f"could not start embedded PostgreSQL in {pgdata}: {exc}") from exc


def stop_embedded(data_dir: Path) -> None:
    """Stop using the cluster under ``data_dir/pg``; it stops if no other process uses it."""
    embedded.release(data_dir / "pg")


def bootstrap_embedded(superuser: str, app_role: str) -> Conninfos:
    """Create the owner role, the app role and the database on the private cluster."""
    with psycopg.connect(superuser, autocommit=True) as conn:
        for role in (EMBEDDED_OWNER, app_role):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                    ).format(sql.Identifier(role))
                )
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DB,)
        ).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(EMBEDDED_DB), sql.Identifier(EMBEDDED_OWNER)
                )
            )
    base = conninfo_to_dict(superuser)
    owner = make_conninfo("", **{**base, "dbname": EMBEDDED_DB, "user": EMBEDDED_OWNER})
    app = make_conninfo("", **{**base, "dbname": EMBEDDED_DB, "user": app_role})
    return Conninfos(owner=owner, app=app)


def app_conninfo_from_owner(owner: str, settings: PlatformSettings) -> str:
    params = {k: v for k, v in conninfo_to_dict(owner).items() if k != "password"}
    params["user"] = settings.app_db_role
    if settings.app_db_password:
        params["password"] = settings.app_db_password
    return make_conninfo("", **params)


def resolve(settings: Settings) -> Conninfos:
    """The owner and app connections for these settings, starting the embedded cluster if needed."""
    platform = settings.platform
    if platform.database_url is None:
        infos = bootstrap_embedded(start_embedded(platform.data_dir), platform.app_db_role)
        if platform.app_database_url:
            return Conninfos(infos.owner, platform.app_database_url)
        return infos
    try:
        conninfo_to_dict(platform.database_url)
    except psycopg.ProgrammingError as exc:
        raise DatabaseSetupError(f"DATABASE_URL is not a valid connection string: {exc}") from None
    app = platform.app_database_url or app_conninfo_from_owner(platform.database_url, platform)
    return Conninfos(owner=platform.database_url, app=app)


def ensure_app_role(owner: str, settings: PlatformSettings) -> None:
    """Create the app role on an external server if the owner may (CREATEROLE)."""
    with psycopg.connect(owner, autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (settings.app_db_role,),
        ).fetchone()
        if row is None:
            statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(
                sql.Identifier(settings.app_db_role)
            )
            if settings.app_db_password:
                statement = sql.SQL("{} PASSWORD {}").format(
                    statement, sql.Literal(settings.app_db_password)
                )
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                raise DatabaseSetupError(
                    f"role {settings.app_db_role!r} does not exist and could not be created: "
                    f"{exc.diag.message_primary or exc}"
                ) from None
        elif row[0] or row[1]:
            raise DatabaseSetupError(
                f"role {settings.app_db_role!r} is a superuser or bypasses RLS; refusing to use it"
            )


def migration_locations() -> list[str]:
    """The schema's history (``platform/migrations/versions``), then each context's own."""
    from impextech.platform.contexts import CONTEXTS

    packages = ["impextech.platform.migrations.versions"]
    packages += [c.migrations for c in CONTEXTS if c.migrations is not None]
    return [str(resources.files(package)) for package in packages]


def alembic_config(owner: str, app_role: str) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("impextech.platform").joinpath("migrations"))
    )
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(migration_locations()))
    config.attributes["conninfo"] = owner
    config.attributes["app_role"] = app_role
    return config


def upgrade(owner: str, app_role: str, revision: str = "heads") -> None:
    try:
        command.upgrade(alembic_config(owner, app_role), revision)
    except CommandError as exc:  # e.g. an unknown revision: nothing was applied
        raise DatabaseSetupError(str(exc)) from None


def downgrade(owner: str, app_role: str, revision: str) -> None:
    try:
        command.downgrade(alembic_config(owner, app_role), revision)
    except CommandError as exc:
        raise DatabaseSetupError(str(exc)) from None


def head_revision() -> str:
    """The newest revision of every branch, joined with '+' in a stable order.

    Each context that brings tables keeps its own branch off the shared history (its first
    migration's down_revision is a shared revision, with the context's name as branch label), so
    contexts added side by side never fight over one linear chain.
    """
    script = ScriptDirectory.from_config(alembic_config("", ""))
    heads = script.get_heads()
    assert heads
    return "+".join(sorted(heads))


def current_revision(conninfo: str) -> str | None:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return "+".join(sorted(str(row[0]) for row in rows)) or None


def require_current(settings: Settings) -> Conninfos:
    """The connections, after checking that the schema is at the newest revision."""
    infos = resolve(settings)
    try:
        current = current_revision(infos.owner)
    except psycopg.errors.UndefinedTable:
        current = None
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseSetupError(f"cannot reach the database: {first}") from None
    head = head_revision()
    if current != head:
        raise DatabaseSetupError(
            f"the schema is at {current or 'nothing'}, not {head}: run `impextech db upgrade`"
        )
    return infos


def prepare(settings: Settings) -> Conninfos:
    """Everything `db upgrade` does: reach the server, make sure of the roles, migrate."""
    infos = resolve(settings)
    try:
        ensure_app_role(infos.owner, settings.platform)
        upgrade(infos.owner, settings.platform.app_db_role)
    except psycopg.OperationalError as exc:
        raise DatabaseSetupError(
            f"cannot reach the database: {str(exc).strip().splitlines()[0]}"
        ) from None
    return infos
