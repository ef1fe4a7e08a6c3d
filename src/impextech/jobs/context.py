"""What the jobs context brings: scheduling for every context, the job registry, the jobs API,
the queue gauges, the jobs console page, and the worker process with its commands."""

from __future__ import annotations

from impextech.jobs.adapters import cli
from impextech.jobs.adapters.http import JobsWeb, router
from impextech.jobs.adapters.metrics import QueueGauges
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.registry import JOB_REGISTRY, NOOP, JobRegistry, noop
from impextech.jobs.adapters.scheduling import JOB_SCHEDULING, JobScheduling
from impextech.jobs.adapters.sql import SqlJobsUnitOfWork
from impextech.jobs.service.jobs import JobsService
from impextech.jobs.settings import JobsSettings
from impextech.kernel.contexts import Assembly, ConsolePage, Context, Process

CONSOLE = ConsolePage(
    "jobs",
    "impextech.jobs.adapters.console",
    "jobs.html",
    {"console.js": "text/javascript; charset=utf-8"},
)


def install(assembly: Assembly) -> None:
    database = assembly.database
    queue = ProcrastinateQueue(database.conninfo, pool_size=database.size)
    registry = JobRegistry(queue)
    registry.declare(NOOP, noop)
    assembly.provide(JOB_REGISTRY, registry)
    assembly.provide(JOB_SCHEDULING, JobScheduling(queue, assembly.clock))
    if assembly.process is Process.WEB:
        service = JobsService(
            lambda tenant_id: SqlJobsUnitOfWork(database, tenant_id, queue), assembly.clock
        )
        assembly.add_router(router, state=("jobs", JobsWeb(service, assembly.cursors)))
        gauges = QueueGauges(database, lambda: queue.queue_names)
        assembly.add_collector(gauges, refresh=gauges.refresh)
        assembly.add_console_page(CONSOLE)


CONTEXT = Context(
    "jobs",
    install=install,
    settings=JobsSettings,
    commands=cli.register,
    global_tables={
        "procrastinate_jobs": (
            "job-library queue machinery: args carry only a tenant id and a job id (periodic "
            "ticks: a timestamp); payload, result and errors live in the RLS-protected jobs table"
        ),
        "procrastinate_workers": "job-library machinery: worker heartbeats, no tenant data",
        "procrastinate_periodic_defers": "job-library machinery: periodic schedule, no tenant data",
        "procrastinate_events": "job-library machinery: job state transitions, ids only",
    },
)
