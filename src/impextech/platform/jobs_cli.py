"""`impextech worker` and `impextech jobs …`: running jobs and handling the dead letters.

The dead-letter commands are the platform operator's path across tenants: they visit each
marketplace in its own tenant context (row-level security still applies) and log every action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

import structlog
import typer
from rich.console import Console
from rich.table import Table

from impextech.kernel.db import Database

T = TypeVar("T")

out = Console()
audit = structlog.get_logger("impextech.operator")


def register(app: typer.Typer) -> None:
    jobs_app = typer.Typer(help="Dead letters: list, retry, discard.", no_args_is_help=True)
    app.add_typer(jobs_app, name="jobs")
    app.command("worker")(worker)
    jobs_app.command("dead")(jobs_dead)
    jobs_app.command("retry")(jobs_retry)
    jobs_app.command("discard")(jobs_discard)


def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Serve this worker's Prometheus counters on 127.0.0.1:PORT"
        ),
    ] = None,
) -> None:
    """Run jobs from the queues in IMPEXTECH_WORKER_QUEUES until SIGTERM (drains) or Ctrl+C."""
    from prometheus_client import CollectorRegistry, start_http_server

    from impextech.platform import database as db
    from impextech.platform.cli import CliError, _settings
    from impextech.platform.jobs import make_worker

    settings = _settings()
    infos = db.require_current(settings)
    registry = CollectorRegistry()
    if metrics_port is not None:
        try:
            start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
        except OSError as exc:
            raise CliError(f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc}") from None

    async def run() -> None:
        process, database = make_worker(settings, infos.app, registry)
        try:
            await process.run()
        finally:
            await database.dispose()

    out.print(
        "worker: queues "
        + ", ".join(f"{q}×{n}" for q, n in settings.worker_queues)
        + f"; lease {settings.job_lease_seconds} s, drain {settings.worker_drain_seconds} s"
    )
    asyncio.run(run())


async def _each_tenant(
    app_conninfo: str, visit: Callable[[Database, UUID, str], Awaitable[T]]
) -> list[T]:
    database = Database.connect(app_conninfo, size=2)
    try:
        async with database.transaction(None) as conn:
            cur = await conn.execute("SELECT id, slug FROM tenants ORDER BY slug")
            tenants = [(row.id, row.slug) for row in await cur.fetchall()]
        return [await visit(database, tenant_id, slug) for tenant_id, slug in tenants]
    finally:
        await database.dispose()


def jobs_dead(
    tenant: Annotated[str | None, typer.Option(help="Only this marketplace (slug)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most recent N per marketplace")] = 50,
) -> None:
    """List dead jobs (attempts exhausted) with their last error."""
    from impextech.jobs.api import Job, JobState, SqlJobsUnitOfWork
    from impextech.platform import database as db
    from impextech.platform.cli import _settings
    from impextech.platform.jobs import make_queue

    settings = _settings()
    infos = db.require_current(settings)
    queue = make_queue(settings, infos.app)

    async def visit(database: Database, tenant_id: UUID, slug: str) -> list[tuple[str, Job]]:
        if tenant is not None and slug != tenant:
            return []
        async with SqlJobsUnitOfWork(database, tenant_id, queue) as uow:
            page = await uow.jobs.list(JobState.DEAD, None, limit)
        return [(slug, job) for job in page.items]

    _require_tenant_exists(tenant, infos.app)
    found = [row for rows in asyncio.run(_each_tenant(infos.app, visit)) for row in rows]
    table = Table(
        "id", "marketplace", "kind", "attempts", "finished", "last error", title="Dead jobs"
    )
    for slug, job in found:
        finished = job.finished_at.isoformat(timespec="seconds") if job.finished_at else ""
        table.add_row(
            str(job.id),
            slug,
            job.kind,
            f"{job.attempts}/{job.max_attempts}",
            finished,
            job.last_error or "",
        )
    out.print(table if found else "no dead jobs")


def _require_tenant_exists(slug: str | None, app_conninfo: str) -> None:
    if slug is None:
        return
    import psycopg

    from impextech.platform.cli import CliError

    with psycopg.connect(app_conninfo) as conn:
        if conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (slug,)).fetchone() is None:
            raise CliError(f"no marketplace {slug!r}")


def _act(job_id: str, action: str) -> None:
    from impextech.jobs.api import JobNotFound, SqlJobsUnitOfWork, discard_dead, retry_dead
    from impextech.kernel.domain.clock import SystemClock
    from impextech.platform import database as db
    from impextech.platform.cli import CliError, _settings
    from impextech.platform.jobs import make_queue

    try:
        wanted = UUID(job_id)
    except ValueError:
        raise CliError(f"{job_id!r} is not a job id (a UUID)") from None
    settings = _settings()
    infos = db.require_current(settings)
    queue = make_queue(settings, infos.app)
    clock = SystemClock()

    async def visit(database: Database, owner: UUID, slug: str) -> str | None:
        def uow(tenant_id: UUID) -> SqlJobsUnitOfWork:
            return SqlJobsUnitOfWork(database, tenant_id, queue)

        try:
            if action == "retry":
                await retry_dead(uow, clock, owner, wanted)
            else:
                await discard_dead(uow, clock, owner, wanted)
        except JobNotFound:
            return None
        audit.info("operator acted on a dead job", action=action, job_id=str(wanted),
                   tenant_id=str(owner))  # fmt: skip
        return slug

    done = [slug for slug in asyncio.run(_each_tenant(infos.app, visit)) if slug]
    if not done:
        raise CliError(f"no job {wanted} in any marketplace")
    verb = "queued again" if action == "retry" else "discarded"
    out.print(f"job {wanted} ({done[0]}) {verb}")


def jobs_retry(job_id: Annotated[str, typer.Argument(help="The dead job's id")]) -> None:
    """Run a dead job again, with a fresh set of attempts."""
    _act(job_id, "retry")


def jobs_discard(job_id: Annotated[str, typer.Argument(help="The dead job's id")]) -> None:
    """Give up on a dead job; it leaves the dead letters and is kept as discarded."""
    _act(job_id, "discard")
