"""`impextech audit tenancy`: check a live database's tenant walls and print them as a table."""

from __future__ import annotations

import logging
import sys

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.table import Table

from impextech.platform import database as db
from impextech.platform.settings import Settings
from impextech.platform.tenancy import AuditReport, audit_database

audit_app = typer.Typer(help="Audits of a live database.", no_args_is_help=True)


def app_role_of(app_conninfo: str, settings: Settings) -> str:
    """The role the application really connects as: its connection's user, else the setting."""
    try:
        user = conninfo_to_dict(app_conninfo).get("user")
    except psycopg.ProgrammingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise db.DatabaseSetupError(
            f"IMPEXTECH_APP_DATABASE_URL is not a valid connection string: {first}"
        ) from None
    return str(user) if user else settings.platform.app_db_role


def render(report: AuditReport) -> Table:
    table = Table("check", "table", "result", "detail", title="Tenant isolation audit")
    for finding in report.findings:
        result = "[green]pass[/green]" if finding.ok else "[bold red]FAIL[/bold red]"
        table.add_row(finding.check, finding.subject, result, finding.detail)
    return table


def summary(report: AuditReport) -> str:
    failures = report.failures
    if not failures:
        return f"tenancy audit passed: {len(report.findings)} checks"
    named = "; ".join(f"{f.subject}: {f.check} ({f.detail})" for f in failures)
    return f"tenancy audit failed, {len(failures)} of {len(report.findings)} checks: {named}"


@audit_app.command("tenancy")
def tenancy() -> None:
    """Every table tenant-scoped or allowlisted, RLS enabled and forced with a tenant policy,
    composite foreign keys, and an app role that owns nothing and cannot bypass RLS.

    Exit status: 0 when every check passes, 1 otherwise.
    """
    from impextech.platform.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.platform.log_format, settings.platform.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    infos = db.resolve(settings)
    role = app_role_of(infos.app, settings)
    try:
        report = audit_database(infos.owner, role)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        raise db.DatabaseSetupError(f"cannot reach the database: {first}") from None
    # Wide enough that each finding stays on one line when the output is piped or captured.
    Console(width=max(160, Console().width)).print(render(report))
    if not report.ok:
        print(f"impextech: error: {summary(report)}", file=sys.stderr)
        raise typer.Exit(1)
    print(summary(report))


def register(app: typer.Typer) -> None:
    """Add the `audit` command group to the platform's command line."""
    app.add_typer(audit_app, name="audit")
