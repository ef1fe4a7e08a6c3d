"""The `impextech` command line. Errors are one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import logging
import sys
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from impextech.kernel.db import Database
from impextech.kernel.domain.errors import ImpextechError
from impextech.platform import audit_cli, jobs_cli
from impextech.platform import database as db
from impextech.platform.settings import Settings, SettingsError
from impextech.sandbox import cli as sandbox_cli

T = TypeVar("T")

app = typer.Typer(
    name="impextech",
    help="Impextech: one platform for running online marketplaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
tenants_app = typer.Typer(help="Marketplace (tenant) registry.", no_args_is_help=True)
users_app = typer.Typer(help="User administration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(users_app, name="users")

out = Console()


class CliError(Exception):
    """A one-line failure message for the operator."""


def _settings() -> Settings:
    from impextech.platform.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    # Commands print their own one-line summaries; alembic's chatter would bury them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro_fn())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (as the schema owner) and make sure of the app role."""
    settings = _settings()
    infos = db.prepare(settings)
    out.print(f"schema at revision [bold]{db.current_revision(infos.owner)}[/bold]")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1")],
) -> None:
    """Revert migrations down to REVISION."""
    settings = _settings()
    infos = db.resolve(settings)
    db.downgrade(infos.owner, settings.app_db_role, revision)
    out.print(f"schema at revision {db.current_revision(infos.owner)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema's current revision and the newest one this code knows."""
    settings = _settings()
    infos = db.resolve(settings)
    out.print(f"current: {db.current_revision(infos.owner)}  head: {db.head_revision()}")


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Lowercase id used in X-Tenant and subdomains")],
    name: Annotated[str, typer.Option("--name", help="Display name")],
) -> None:
    """Create a marketplace."""
    from impextech.identity.adapters.sql import SqlTenantStore
    from impextech.identity.domain.model import validate_slug
    from impextech.identity.service.tenants import TenantAdmin
    from impextech.kernel.domain.clock import SystemClock

    validate_slug(slug)
    settings = _settings()
    infos = db.require_current(settings)

    async def create() -> None:
        owner = Database.connect(infos.owner, size=1)
        try:
            tenant = await TenantAdmin(SqlTenantStore(owner), SystemClock()).create(slug, name)
        finally:
            await owner.dispose()
        out.print(f"created tenant [bold]{tenant.slug}[/bold] ({tenant.id})")

    _run(create)


@tenants_app.command("list")
def tenants_list() -> None:
    """List marketplaces."""
    import psycopg

    settings = _settings()
    infos = db.require_current(settings)
    with psycopg.connect(infos.owner) as conn:
        rows = conn.execute("SELECT slug, name, status, id FROM tenants ORDER BY slug").fetchall()
    table = Table("slug", "name", "status", "id")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out.print(table)


@users_app.command("create-admin")
def users_create_admin(
    tenant: Annotated[str, typer.Option("--tenant", help="The marketplace's slug")],
    email: Annotated[str, typer.Option("--email")],
    name: Annotated[str, typer.Option("--name", help="Display name")] = "Admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an admin account in a marketplace (asks for the password)."""
    from email_validator import EmailNotValidError, validate_email

    from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
    from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
    from impextech.identity.domain.model import User, UserStatus
    from impextech.identity.domain.passwords import check_password
    from impextech.kernel.domain.clock import SystemClock
    from impextech.kernel.domain.errors import EmailTaken, UnknownTenant
    from impextech.kernel.domain.principal import Role

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise CliError(f"invalid email: {exc}") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the passwords differ")
    check_password(password, email=email, display_name=name)
    settings = _settings()
    infos = db.require_current(settings)

    async def create() -> None:
        app_db = Database.connect(infos.app, size=1)
        try:
            found = await SqlTenantStore(app_db).get_by_slug(tenant)
            if found is None:
                raise UnknownTenant(f"no marketplace {tenant!r}")
            now = SystemClock().now()
            user = User(
                id=uuid.uuid4(),
                tenant_id=found.id,
                email=email,
                display_name=name,
                role=Role.ADMIN,
                status=UserStatus.ACTIVE,
                password_hash=await Argon2PasswordHasher(1).hash(password),
                created_at=now,
                updated_at=now,
            )
            async with SqlIdentityUnitOfWork(app_db, found.id) as uow:
                if await uow.users.email_exists(email):
                    raise EmailTaken(f"{email} is already registered in {tenant}")
                await uow.users.add(user)
                await uow.commit()
        finally:
            await app_db.dispose()
        out.print(f"created admin [bold]{email}[/bold] in {tenant} ({user.id})")

    _run(create)


def _serve(
    settings: Settings, app_conninfo: str, host: str, port: int, *, with_worker: bool = False
) -> None:
    import uvicorn

    from impextech.platform.app import create_app
    from impextech.platform.jobs import make_worker

    web = create_app(settings, app_conninfo)
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
    )
    server = uvicorn.Server(config)
    if not with_worker:
        server.run()
        return

    async def both() -> None:
        # One process for the demo: the worker shares the web app's metrics registry, and
        # with no ERP configured the sandbox ERP plays the tenants' ERP on a free local port.
        async with contextlib.AsyncExitStack() as stack:
            worker_settings = settings
            if settings.erp_url is None:
                from impextech.sandbox.erp import create_app as create_erp
                from impextech.sandbox.server import serving

                erp_url = await stack.enter_async_context(serving(create_erp()))
                worker_settings = dataclasses.replace(settings, erp_url=erp_url)
                out.print(f"ERP:         the sandbox ERP at {erp_url} (see {erp_url}/_stats)")
            worker, database = make_worker(
                worker_settings, app_conninfo, web.state.metrics_registry, name="demo-worker"
            )
            running = asyncio.create_task(worker.run(install_signal_handlers=False))
            try:
                await server.serve()
            finally:
                worker.stop()
                await running
                await database.dispose()

    asyncio.run(both())


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [IMPEXTECH_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [IMPEXTECH_PORT]")] = None,
) -> None:
    """Run the web server (migrations must be current: run `impextech db upgrade` first)."""
    settings = _settings()
    infos = db.require_current(settings)
    _serve(settings, infos.app, host or settings.host, port if port is not None else settings.port)


@app.command("demo")
def demo(
    port: Annotated[int | None, typer.Option(help="Port [IMPEXTECH_PORT]")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address [IMPEXTECH_HOST]")] = None,
) -> None:
    """Embedded database, migrations, demo data, the web server, a worker and a sandbox ERP."""
    from impextech.platform.jobs import make_queue
    from impextech.platform.seed import DEMO_PASSWORD, demo_logins, seed_demo

    settings = _settings()
    out.print("[dim]starting the database and applying migrations…[/dim]")
    infos = db.prepare(settings)

    async def seed() -> bool:
        owner, app_db = Database.connect(infos.owner), Database.connect(infos.app)
        try:
            return await seed_demo(owner, app_db, make_queue(settings, infos.app))
        finally:
            await owner.dispose()
            await app_db.dispose()

    created = _run(seed)
    bind_host = host or settings.host
    bind_port = port if port is not None else settings.port
    base = (
        f"http://{'localhost' if bind_host in ('127.0.0.1', '0.0.0.0') else bind_host}:{bind_port}"  # noqa: S104
    )
    table = Table("marketplace", "email", "role", title=f"Demo logins (password: {DEMO_PASSWORD})")
    for login in demo_logins():
        table.add_row(login.tenant, login.email, login.role.value)
    out.print(("seeded demo data" if created else "demo data already present") + "\n")
    out.print(table)
    out.print(f"API docs:    {base}/docs")
    out.print(f"Storefront:  curl -H 'X-Tenant: acme' {base}/api/v1/products")
    out.print(f"Health:      {base}/healthz  {base}/readyz  {base}/metrics")
    out.print(f"Jobs:        a worker runs in this process ({base}/console/jobs)")
    out.print("Press Ctrl+C to stop.")
    _serve(settings, infos.app, bind_host, bind_port, with_worker=True)


def _register_vet() -> None:
    from impextech.vet.cli import register

    register(app)


_register_vet()
jobs_cli.register(app)
audit_cli.register(app)
sandbox_cli.register(app)


def main() -> None:
    try:
        result = app(standalone_mode=False)
    except (CliError, ImpextechError, SettingsError, db.DatabaseSetupError) as exc:
        _fail(str(exc), 1)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as exc:
        # Usage errors (unknown option, missing argument): one line, like every other error.
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            print(context.get_help())
            sys.exit(0)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        _fail(f"{message}{where}", getattr(exc, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> None:
    print(f"impextech: error: {message}", file=sys.stderr)
    sys.exit(code)
