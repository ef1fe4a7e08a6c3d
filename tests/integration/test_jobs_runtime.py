"""The job runtime on real PostgreSQL with a real Procrastinate worker in this process."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.adapters.sql import SqlJobsUnitOfWork
from impextech.jobs.api import (
    Backoff,
    JobContext,
    JobKind,
    JobRequest,
    JobScheduling,
    JsonObject,
    RetryLater,
)
from impextech.jobs.service.jobs import discard_dead, retry_dead
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform.database import Conninfos
from tests.support.jobs import (
    enqueue,
    job_row,
    make_runtime,
    queue_job,
    running_worker,
    wait_for,
)
from tests.support.world import make_tenant

pytestmark = pytest.mark.anyio

FAST = Backoff(base_seconds=0.05, cap_seconds=0.2)


async def test_a_job_runs_in_its_tenant_and_records_result_and_progress(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.report", max_attempts=3, backoff=FAST)
    seen: list[tuple[UUID, str]] = []

    async def handler(ctx: JobContext) -> JsonObject:
        # The handler's own transaction in the job's tenant sees that tenant's rows only.
        database = Database.connect(clean_db.app, size=1)
        try:
            async with database.transaction(ctx.tenant_id) as conn:
                cur = await conn.execute(
                    "SELECT current_setting('app.tenant_id'), count(*) FROM users"
                )
                row = await cur.fetchone()
        finally:
            await database.dispose()
        assert row is not None
        seen.append((ctx.tenant_id, row[0]))
        await ctx.progress(3, 4)
        return {"users": row[1], "echo": ctx.payload["n"]}

    runtime = make_runtime(clean_db.app, {kind: handler})
    job_id = await enqueue(clean_db.app, runtime, acme.id, kind, {"n": 7})
    assert job_row(clean_db.owner, acme.id, job_id)["state"] == "queued"  # type: ignore[index]
    async with running_worker(runtime):
        row = await wait_for(clean_db.owner, acme.id, job_id, {"succeeded"})
    assert seen == [(acme.id, str(acme.id))]
    assert row["result"] == {"users": 4, "echo": 7}
    assert (row["attempts"], row["progress_done"], row["progress_total"]) == (1, 3, 4)
    assert row["started_at"] is not None
    assert row["finished_at"] is not None


async def test_failures_retry_with_jittered_backoff_then_succeed(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.flaky", max_attempts=5, backoff=FAST)
    calls: list[datetime] = []

    async def handler(ctx: JobContext) -> JsonObject:
        calls.append(datetime.now(UTC))
        if len(calls) < 3:
            raise ConnectionError(f"partner down ({len(calls)})")
        return {"ok": True}

    runtime = make_runtime(clean_db.app, {kind: handler})
    job_id = await enqueue(clean_db.app, runtime, acme.id, kind)
    async with running_worker(runtime):
        failed = await wait_for(clean_db.owner, acme.id, job_id, {"failed", "succeeded"})
        row = await wait_for(clean_db.owner, acme.id, job_id, {"succeeded"})
    if failed["state"] == "failed":
        assert failed["last_error"].startswith("ConnectionError: partner down")
        assert failed["next_attempt_at"] is not None
    assert row["attempts"] == 3
    assert row["last_error"] is None
    assert len(calls) == 3
    # Each wait is drawn from [0, base * 2**(n-1)) capped at 0.2 s, plus the 0.1 s poll.
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(calls)]
    assert all(gap < 0.2 + 1.0 for gap in gaps), gaps


async def test_exhausted_attempts_go_to_the_dead_letters_and_can_be_retried_or_discarded(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.broken", max_attempts=3, backoff=FAST)
    healed = False
    runs = Counter[UUID]()

    async def handler(ctx: JobContext) -> JsonObject:
        runs[ctx.job_id] += 1
        if not healed:
            raise ValueError(f"bad data in {ctx.payload['name']}")
        return {"fixed": True}

    runtime = make_runtime(clean_db.app, {kind: handler})
    first = await enqueue(clean_db.app, runtime, acme.id, kind, {"name": "one"})
    second = await enqueue(clean_db.app, runtime, acme.id, kind, {"name": "two"})
    async with running_worker(runtime):
        dead = await wait_for(clean_db.owner, acme.id, first, {"dead"})
        await wait_for(clean_db.owner, acme.id, second, {"dead"})
        assert dead["attempts"] == 3
        assert dead["last_error"] == "ValueError: bad data in one"
        assert dead["finished_at"] is not None
        assert queue_job(clean_db.owner, dead["queue_job_id"])["status"] == "failed"
        assert runs[first] == 3

        healed = True
        database = Database.connect(clean_db.app, size=2)
        try:

            def uow(tenant_id: UUID) -> SqlJobsUnitOfWork:
                return SqlJobsUnitOfWork(database, tenant_id, runtime.queue)

            retried = await retry_dead(uow, SystemClock(), acme.id, first)
            assert (retried.state.value, retried.attempts, retried.last_error) == (
                "queued",
                0,
                None,
            )
            done = await wait_for(clean_db.owner, acme.id, first, {"succeeded"})
            assert done["attempts"] == 1
            assert done["result"] == {"fixed": True}

            discarded = await discard_dead(uow, SystemClock(), acme.id, second)
            assert discarded.state.value == "discarded"
        finally:
            await database.dispose()
    assert runs[second] == 3  # discarding ran nothing


async def test_a_job_over_its_time_limit_is_cut_off_and_counted(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.slow", max_attempts=2, timeout_seconds=0.3, backoff=FAST)
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> JsonObject:
        started.set()
        await asyncio.sleep(30)
        return {}

    runtime = make_runtime(clean_db.app, {kind: handler})
    job_id = await enqueue(clean_db.app, runtime, acme.id, kind)
    began = asyncio.get_running_loop().time()
    async with running_worker(runtime):
        row = await wait_for(clean_db.owner, acme.id, job_id, {"dead"})
    assert started.is_set()
    assert asyncio.get_running_loop().time() - began < 10
    assert row["attempts"] == 2
    assert row["last_error"] == "timed out after 0.3 s"


async def test_retry_later_waits_without_spending_an_attempt(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.breaker", max_attempts=1, backoff=FAST)
    calls = 0

    async def handler(ctx: JobContext) -> JsonObject:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RetryLater(datetime.now(UTC) + timedelta(milliseconds=50), "breaker open")
        return {"attempt": ctx.attempt}

    runtime = make_runtime(clean_db.app, {kind: handler})
    job_id = await enqueue(clean_db.app, runtime, acme.id, kind)
    async with running_worker(runtime):
        row = await wait_for(clean_db.owner, acme.id, job_id, {"succeeded", "dead"})
    # Three postponements and one real attempt: a one-attempt job still succeeded.
    assert (row["state"], row["attempts"], calls) == ("succeeded", 1, 4)
    assert row["result"] == {"attempt": 1}


async def test_a_job_without_a_tenant_is_refused_and_runs_nothing(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    globex = make_tenant(clean_db.owner, "globex")
    kind = JobKind("test.guarded", max_attempts=3, backoff=FAST)
    ran: list[UUID] = []

    async def handler(ctx: JobContext) -> JsonObject:
        ran.append(ctx.job_id)
        return {}

    runtime = make_runtime(clean_db.app, {kind: handler})
    acme_job = await enqueue(clean_db.app, runtime, acme.id, kind)
    manager = runtime.queue.app.job_manager
    from procrastinate import jobs as pjobs

    async with runtime.queue.app.open_async():
        no_tenant = await manager.defer_job_async(
            pjobs.Job(id=None, queue="default", lock=None, queueing_lock=None,
                      task_name=kind.name, task_kwargs={"job_id": str(acme_job)})
        )  # fmt: skip
        wrong_tenant = await manager.defer_job_async(
            pjobs.Job(id=None, queue="default", lock=None, queueing_lock=None,
                      task_name=kind.name,
                      task_kwargs={"tenant_id": str(globex.id), "job_id": str(acme_job)})
        )  # fmt: skip
    assert no_tenant.id is not None
    assert wrong_tenant.id is not None
    # Run the forged jobs first: neither may touch acme's job.
    async with running_worker(runtime):
        for forged in (no_tenant.id, wrong_tenant.id):
            for _ in range(200):
                if queue_job(clean_db.owner, forged)["status"] in {"failed", "succeeded"}:
                    break
                await asyncio.sleep(0.05)
        await wait_for(clean_db.owner, acme.id, acme_job, {"succeeded"})
    assert queue_job(clean_db.owner, no_tenant.id)["status"] == "failed"
    # Under globex's context acme's job does not exist: nothing ran, nothing was revealed.
    assert queue_job(clean_db.owner, wrong_tenant.id)["status"] == "succeeded"
    assert ran == [acme_job]
    assert job_row(clean_db.owner, acme.id, acme_job)["attempts"] == 1  # type: ignore[index]


async def test_identical_pending_jobs_are_joined_and_a_key_runs_one_at_a_time(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    globex = make_tenant(clean_db.owner, "globex")
    kind = JobKind("test.ordered", max_attempts=1)
    running = Counter[str]()
    overlap: list[str] = []

    async def handler(ctx: JobContext) -> JsonObject:
        key = f"{ctx.tenant_id}:{ctx.payload['key']}"
        running[key] += 1
        if running[key] > 1:
            overlap.append(key)
        await asyncio.sleep(0.1)
        running[key] -= 1
        return {}

    runtime = make_runtime(clean_db.app, {kind: handler})
    twin_a = await enqueue(clean_db.app, runtime, acme.id, kind, {"key": "t"}, dedup_key="same")
    twin_b = await enqueue(clean_db.app, runtime, acme.id, kind, {"key": "t"}, dedup_key="same")
    other_tenant = await enqueue(
        clean_db.app, runtime, globex.id, kind, {"key": "t"}, dedup_key="same"
    )
    assert twin_a == twin_b
    assert other_tenant != twin_a
    serial = [
        await enqueue(clean_db.app, runtime, acme.id, kind, {"key": "k"}, lock_key="k")
        for _ in range(4)
    ]
    async with running_worker(runtime, (("default", 8),)):
        for job in serial:
            await wait_for(clean_db.owner, acme.id, job, {"succeeded"})
    assert overlap == []
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(acme.id),))
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (5,)


async def test_bulk_work_cannot_take_the_urgent_queue_slots(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    bulk = JobKind("test.bulk", queue="bulk", max_attempts=1, timeout_seconds=30)
    urgent = JobKind("test.urgent", queue="urgent", max_attempts=1)
    release = asyncio.Event()

    async def slow(ctx: JobContext) -> JsonObject:
        await release.wait()
        return {}

    async def quick(ctx: JobContext) -> JsonObject:
        return {}

    runtime: JobRuntime = make_runtime(clean_db.app, {bulk: slow, urgent: quick})
    bulk_jobs = [await enqueue(clean_db.app, runtime, acme.id, bulk) for _ in range(6)]
    async with running_worker(runtime, (("urgent", 1), ("bulk", 2))):
        await wait_for(clean_db.owner, acme.id, bulk_jobs[0], {"running"})
        urgent_job = await enqueue(clean_db.app, runtime, acme.id, urgent)
        row = await wait_for(clean_db.owner, acme.id, urgent_job, {"succeeded"}, within=5)
        assert row["state"] == "succeeded"
        release.set()
        for job in bulk_jobs:
            await wait_for(clean_db.owner, acme.id, job, {"succeeded"})


async def test_many_jobs_enqueue_in_one_go_joining_twins_and_pending_jobs(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    kind = JobKind("test.bulk_push", max_attempts=1)
    seen: list[str] = []

    async def handler(ctx: JobContext) -> JsonObject:
        seen.append(str(ctx.payload["n"]))
        return {}

    runtime = make_runtime(clean_db.app, {kind: handler})
    pending = await enqueue(clean_db.app, runtime, acme.id, kind, {"n": "old"}, dedup_key="k1")
    database = Database.connect(clean_db.app, size=1)
    try:
        async with database.transaction(acme.id) as conn:
            scheduling = JobScheduling(runtime.queue, SystemClock())
            scheduler = scheduling.in_transaction(conn, acme.id)
            ids = await scheduler.enqueue_many(
                kind,
                [
                    JobRequest({"n": "a"}, dedup_key="k1", lock_key="k1"),  # joins the pending
                    JobRequest({"n": "b"}, dedup_key="k2", lock_key="k2"),
                    JobRequest({"n": "c"}, dedup_key="k2", lock_key="k2"),  # twin of b
                    JobRequest({"n": "d"}),
                ],
            )
    finally:
        await database.dispose()
    assert ids[0] == pending
    assert ids[1] == ids[2]
    assert len({*ids}) == 3
    async with running_worker(runtime):
        for job in ids:
            await wait_for(clean_db.owner, acme.id, job, {"succeeded"})
    assert sorted(seen) == ["b", "d", "old"]
    for job in ids:
        row = job_row(clean_db.owner, acme.id, job)
        assert row is not None
        assert row["queue_job_id"] is not None
