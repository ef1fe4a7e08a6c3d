"""The `impextech` command line. Errors are one clear line on stderr and a non-zero exit.

The platform's own commands (the database, the web server, the demo, the audit) are here; each
context adds its command group through its ``Context.commands``, handed a ``CommandHost`` that
loads the settings and assembles the platform for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import cache
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from impextech.kernel.contexts import Assembly, Process
from impextech.kernel.db import Database
from impextech.kernel.domain.errors import ImpextechError
from impextech.platform import audit_cli
from impextech.platform import database as db
from impextech.platform.contexts import CONTEXTS
from impextech.platform.settings import Settings, SettingsError

app = typer.Typer(
    name="impextech",
    help="Impextech: one platform for running online marketplaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console()

# A command's pool: one connection at a time is all a command uses, and a second for safety.
_COMMAND_POOL = 2


class CliError(Exception):
    """A one-line failure message for the operator."""


@cache
def load_settings() -> Settings:
    from impextech.platform.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.platform.log_format, settings.platform.log_level)
    # Commands print their own one-line summaries; alembic's chatter would bury them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


class Host:
    """What a context's commands get from the platform (``CommandHost``)."""

    console = out

    def fail(self, message: str) -> Exception:
        return CliError(message)

    def settings(self) -> Settings:
        return load_settings()

    @cache  # noqa: B019  (one host per process; the cluster is started and checked once)
    def conninfos(self) -> db.Conninfos:
        return db.require_current(self.settings())

    @contextlib.asynccontextmanager
    async def assembled(self, process: Process = Process.COMMAND) -> AsyncIterator[Assembly]:
        from impextech.platform.assembly import assemble

        settings = self.settings()
        size = None if process is Process.WORKER else _COMMAND_POOL
        assembly = assemble(process, settings, self.conninfos().app, pool_size=size)
        try:
            yield assembly
        finally:
            await assembly.close()

    @contextlib.asynccontextmanager
    async def owner_database(self) -> AsyncIterator[Database]:
        database = Database.connect(self.conninfos().owner, size=1)
        try:
            yield database
        finally:
            await database.dispose()


host = Host()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (as the schema owner) and make sure of the app role."""
    infos = db.prepare(load_settings())
    out.print(f"schema at revision [bold]{db.current_revision(infos.owner)}[/bold]")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1")],
) -> None:
    """Revert migrations down to REVISION."""
    settings = load_settings()
    infos = db.resolve(settings)
    db.downgrade(infos.owner, settings.platform.app_db_role, revision)
    out.print(f"schema at revision {db.current_revision(infos.owner)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema's current revision and the newest one this code knows."""
    infos = db.resolve(load_settings())
    out.print(f"current: {db.current_revision(infos.owner)}  head: {db.head_revision()}")


def _serve(
    settings: Settings, app_conninfo: str, host: str, port: int, *, with_worker: bool = False
) -> None:
    import uvicorn

    from impextech.platform.app import create_app
    from impextech.platform.embedded import exit_on_sigterm

    # SIGTERM (systemd, Docker, CI) must end the process through its exit hooks, as Ctrl+C does:
    # they stop the embedded cluster when this process started it.
    exit_on_sigterm()
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
        from impextech.catalog.settings import CatalogSettings
        from impextech.jobs.api import worker_process
        from impextech.platform.assembly import assemble

        # One process for the demo: the worker's counters join the web app's metrics, and
        # with no ERP configured the sandbox ERP plays the tenants' ERP on a free local port.
        async with contextlib.AsyncExitStack() as stack:
            worker_settings = settings
            catalog = settings.section(CatalogSettings)
            if catalog.erp_url is None:
                from impextech.sandbox.erp import create_app as create_erp
                from impextech.sandbox.server import serving

                erp_url = await stack.enter_async_context(serving(create_erp()))
                worker_settings = settings.with_section(replace(catalog, erp_url=erp_url))
                out.print(f"ERP:         the sandbox ERP at {erp_url} (see {erp_url}/_stats)")
            assembly = assemble(Process.WORKER, worker_settings, app_conninfo)
            worker = worker_process(assembly, name="demo-worker")
            for collector in assembly.collectors:
                web.state.metrics_registry.register(collector)
            running = asyncio.create_task(worker.run(install_signal_handlers=False))
            try:
                await server.serve()
            finally:
                worker.stop()
                await running
                await assembly.close()

    asyncio.run(both())


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [IMPEXTECH_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [IMPEXTECH_PORT]")] = None,
) -> None:
    """Run the web server (migrations must be current: run `impextech db upgrade` first)."""
    from impextech.platform.embedded import exit_on_sigterm

    exit_on_sigterm()  # before the cluster starts, so a SIGTERM while starting stops it too
    settings = load_settings()
    infos = db.require_current(settings)
    platform = settings.platform
    _serve(settings, infos.app, host or platform.host, port if port is not None else platform.port)


@app.command("demo")
def demo(
    port: Annotated[int | None, typer.Option(help="Port [IMPEXTECH_PORT]")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address [IMPEXTECH_HOST]")] = None,
) -> None:
    """Embedded database, migrations, demo data, the web server, a worker and a sandbox ERP."""
    from impextech.platform.embedded import exit_on_sigterm
    from impextech.platform.seed import DEMO_PASSWORD, demo_logins, seed_demo

    exit_on_sigterm()  # before the cluster starts, so a SIGTERM while starting stops it too
    settings = load_settings()
    if settings.platform.metrics_token is None:
        # The demo shows its metrics; a real deployment chooses its own token.
        token = secrets.token_urlsafe(24)
        settings = replace(settings, platform=replace(settings.platform, metrics_token=token))
    metrics_token = settings.platform.metrics_token
    out.print("[dim]starting the database and applying migrations…[/dim]")
    infos = db.prepare(settings)

    async def seed() -> bool:
        from impextech.platform.assembly import assemble

        owner = Database.connect(infos.owner, size=1)
        assembly = assemble(Process.COMMAND, settings, infos.app, pool_size=_COMMAND_POOL)
        try:
            return await seed_demo(owner, assembly)
        finally:
            await assembly.close()
            await owner.dispose()

    created = asyncio.run(seed())
    bind_host = host or settings.platform.host
    bind_port = port if port is not None else settings.platform.port
    base = (
        f"http://{'localhost' if bind_host in ('127.0.0.1', '0.0.0.0') else bind_host}:{bind_port}"  # noqa: S104
    )
    if "IMPEXTECH_PASSWORD_RESET_URL" not in os.environ:
        # The e-mails' links open this demo's own reset page, whatever port it serves on.
        from impextech.identity.settings import IdentitySettings

        identity = settings.section(IdentitySettings)
        reset_page = f"{base}/console/reset-password"
        settings = settings.with_section(replace(identity, password_reset_url=reset_page))
    table = Table("marketplace", "email", "role", title=f"Demo logins (password: {DEMO_PASSWORD})")
    for login in demo_logins():
        table.add_row(login.tenant, login.email, login.role.value)
    out.print(("seeded demo data" if created else "demo data already present") + "\n")
    out.print(table)
    out.print(f"API docs:    {base}/docs")
    out.print(f"Storefront:  curl -H 'X-Tenant: acme' {base}/api/v1/products")
    out.print(f"Health:      {base}/healthz  {base}/readyz")
    out.print(f"Metrics:     curl -H 'Authorization: Bearer {metrics_token}' {base}/metrics")
    out.print(f"Jobs:        a worker runs in this process ({base}/console/jobs)")
    outbox = settings.data_dir / "outbox"
    out.print(f"E-mail:      written to {outbox} (password-reset links)")
    out.print("Press Ctrl+C to stop.")
    _serve(settings, infos.app, bind_host, bind_port, with_worker=True)


audit_cli.register(app)
for _context in CONTEXTS:
    if _context.commands is not None:
        _context.commands(app, host)


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
