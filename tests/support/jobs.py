"""Running real workers against the test database, and following jobs from the outside."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.api import Handler, JobKind, JobScheduling, JsonObject, WorkerProcess
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock


def make_runtime(app_conninfo: str, handlers: Mapping[JobKind, Handler]) -> JobRuntime:
    database = Database.connect(app_conninfo, size=4)
    queue = ProcrastinateQueue(app_conninfo, handlers.keys(), pool_size=4)
    return JobRuntime(database, queue, handlers, SystemClock())


async def enqueue(
    app_conninfo: str,
    runtime: JobRuntime,
    tenant_id: UUID,
    kind: JobKind,
    payload: JsonObject | None = None,
    **options: Any,
) -> UUID:
    database = Database.connect(app_conninfo, size=1)
    try:
        async with database.transaction(tenant_id) as conn:
            scheduler = JobScheduling(runtime.queue, SystemClock()).in_transaction(conn, tenant_id)
            return await scheduler.enqueue(kind, payload or {}, **options)
    finally:
        await database.dispose()


@asynccontextmanager
async def running_worker(
    runtime: JobRuntime,
    queues: tuple[tuple[str, int], ...] = (("default", 4),),
    *,
    lease: float = 30,
    drain: float = 5,
) -> AsyncIterator[WorkerProcess]:
    worker = WorkerProcess(
        runtime, queues, lease_seconds=lease, drain_seconds=drain, poll_seconds=0.1
    )
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=drain + 30)
        await runtime.database.dispose()


def job_row(owner: str, tenant_id: UUID, job_id: UUID) -> dict[str, Any] | None:
    with psycopg.connect(owner, row_factory=dict_row) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        return conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()


async def wait_for(
    owner: str, tenant_id: UUID, job_id: UUID, states: set[str], within: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    row = None
    while time.monotonic() < deadline:
        row = job_row(owner, tenant_id, job_id)
        if row is not None and row["state"] in states:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states} in {within} s; last seen {row}")


def queue_job(owner: str, queue_job_id: int) -> dict[str, Any]:
    with psycopg.connect(owner, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT * FROM procrastinate_jobs WHERE id = %s", (queue_job_id,)
        ).fetchone()
    assert row is not None
    return row
