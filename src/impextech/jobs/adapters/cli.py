"""`impextech worker` and `impextech jobs …`: running jobs and handling the dead letters.

The dead-letter commands are the platform operator's path across tenants: they visit each
marketplace in its own tenant context (row-level security still applies) and log every action.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

import structlog
import typer
from rich.table import Table

from impextech.jobs.adapters.registry import JOB_REGISTRY
from impextech.jobs.adapters.sql import SqlJobsUnitOfWork
from impextech.jobs.adapters.worker import worker_process
from impextech.jobs.domain.model import Job, JobNotFound, JobState
from impextech.jobs.service.jobs import discard_dead, retry_dead
from impextech.jobs.settings import JobsSettings
from impextech.kernel.contexts import Assembly, CommandHost, Process
from impextech.kernel.domain.principal import TenantRef
from impextech.kernel.tenants import TENANT_ROSTER

audit = structlog.get_logger("impextech.operator")


def register(app: typer.Typer, host: CommandHost) -> None:
    jobs_app = typer.Typer(help="Dead letters: list, retry, discard.", no_args_is_help=True)
    app.add_typer(jobs_app, name="jobs")

    @app.command("worker")
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

        settings = host.settings().section(JobsSettings)

        async def run() -> None:
            async with host.assembled(Process.WORKER) as assembly:
                process = worker_process(assembly)
                registry = CollectorRegistry()
                for collector in assembly.collectors:
                    registry.register(collector)
                if metrics_port is not None:
                    try:
                        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
                    except OSError as exc:
                        raise host.fail(
                            f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc}"
                        ) from None
                host.console.print(
                    "worker: queues "
                    + ", ".join(f"{q}×{n}" for q, n in settings.worker_queues)
                    + f"; lease {settings.job_lease_seconds} s,"
                    f" drain {settings.worker_drain_seconds} s"
                )
                await process.run()

        asyncio.run(run())

    @jobs_app.command("dead")
    def jobs_dead(
        tenant: Annotated[str | None, typer.Option(help="Only this marketplace (slug)")] = None,
        limit: Annotated[
            int, typer.Option(min=1, max=1000, help="Most recent N per marketplace")
        ] = 50,
    ) -> None:
        """List dead jobs (attempts exhausted) with their last error."""

        async def collect() -> list[tuple[str, Job]]:
            async with host.assembled() as assembly:
                found: list[tuple[str, Job]] = []
                for each in await _tenants(assembly, host, tenant):
                    async with _uow(assembly, each.id) as uow:
                        page = await uow.jobs.list(JobState.DEAD, None, limit)
                    found.extend((each.slug, job) for job in page.items)
                return found

        found = asyncio.run(collect())
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
        host.console.print(table if found else "no dead jobs")

    @jobs_app.command("retry")
    def jobs_retry(job_id: Annotated[str, typer.Argument(help="The dead job's id")]) -> None:
        """Run a dead job again, with a fresh set of attempts."""
        _act(host, job_id, "retry")

    @jobs_app.command("discard")
    def jobs_discard(job_id: Annotated[str, typer.Argument(help="The dead job's id")]) -> None:
        """Give up on a dead job; it leaves the dead letters and is kept as discarded."""
        _act(host, job_id, "discard")


def _uow(assembly: Assembly, tenant_id: UUID) -> SqlJobsUnitOfWork:
    return SqlJobsUnitOfWork(assembly.database, tenant_id, assembly.require(JOB_REGISTRY).queue)


async def _tenants(assembly: Assembly, host: CommandHost, slug: str | None) -> list[TenantRef]:
    roster = assembly.require(TENANT_ROSTER)
    if slug is None:
        return list(await roster.all_tenants())
    found = await roster.find_tenant(slug)
    if found is None:
        raise host.fail(f"no marketplace {slug!r}")
    return [found]


def _act(host: CommandHost, job_id: str, action: str) -> None:
    try:
        wanted = UUID(job_id)
    except ValueError:
        raise host.fail(f"{job_id!r} is not a job id (a UUID)") from None

    async def visit() -> str | None:
        async with host.assembled() as assembly:
            for each in await _tenants(assembly, host, None):

                def uow(tenant_id: UUID) -> SqlJobsUnitOfWork:
                    return _uow(assembly, tenant_id)

                try:
                    if action == "retry":
                        await retry_dead(uow, assembly.clock, each.id, wanted)
                    else:
                        await discard_dead(uow, assembly.clock, each.id, wanted)
                except JobNotFound:
                    continue
                audit.info("operator acted on a dead job", action=action, job_id=str(wanted),
                           tenant_id=str(each.id))  # fmt: skip
                return each.slug
        return None

    done = asyncio.run(visit())
    if done is None:
        raise host.fail(f"no job {wanted} in any marketplace")
    verb = "queued again" if action == "retry" else "discarded"
    host.console.print(f"job {wanted} ({done}) {verb}")
