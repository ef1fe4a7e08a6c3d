"""Running one job: the wrapper around every handler.

Each job kind becomes one Procrastinate task whose body is ``_run``: it refuses a job without a
tenant, marks the job running in that tenant's transaction, runs the handler under the kind's
time limit, and records the outcome. The decision after a failure (retry after a jittered wait, or
the dead letters) is the domain's (``after_failure``); Procrastinate only carries it out. The
process that fetches and runs these tasks is ``worker.WorkerProcess``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from impextech.jobs.adapters.metrics import JobCounters
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.scheduling import JobScheduling
from impextech.jobs.adapters.sql import SqlJobLedger
from impextech.jobs.domain.model import (
    GiveUp,
    JobKind,
    MissingTenant,
    PermanentJobError,
    RetryLater,
    after_failure,
    describe_error,
)
from impextech.jobs.service.ports import Handler, JobContext
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import Clock

log = structlog.get_logger("impextech.jobs")

# An error in our own bookkeeping (the database went away mid-job) is not the handler's failure;
# the library retries such a job after a short wait, up to this many times in all.
_BOOKKEEPING_RETRIES = 50
_QUEUE_RETENTION_HOURS = 72


class _Reschedule(Exception):
    def __init__(self, at: datetime) -> None:
        super().__init__(at.isoformat())
        self.at = at


class _Buried(Exception):
    pass


class _Decisions(BaseRetryStrategy):
    """Turns the wrapper's verdict into the library's: retry at a time, or stop."""

    def get_retry_decision(
        self, *, exception: BaseException, job: pjobs.Job
    ) -> RetryDecision | None:
        if isinstance(exception, _Reschedule):
            return RetryDecision(retry_at=exception.at)
        if isinstance(exception, (_Buried, MissingTenant)):
            return None
        if isinstance(exception, (asyncio.CancelledError, pexc.JobAborted)):
            # Released at shutdown: due again at once, for another worker.
            return RetryDecision(retry_in={"seconds": 0})
        if job.attempts < _BOOKKEEPING_RETRIES:
            return RetryDecision(retry_in={"seconds": 5})
        return None


def _parse_uuid(value: object) -> UUID | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


class JobRuntime:
    """Every job kind with its handler, registered as tasks of the library's app."""

    def __init__(
        self,
        database: Database,
        queue: ProcrastinateQueue,
        handlers: Mapping[JobKind, Handler],
        clock: Clock,
        counters: JobCounters | None = None,
    ) -> None:
        self.database = database
        self._counters = counters
        self.queue = queue
        self._clock = clock
        # Periodic ticks queue their tenant jobs like any other caller does.
        self._scheduling = JobScheduling(queue, clock)
        self._handlers = dict(handlers)
        missing = set(queue.kinds) - {kind.name for kind in handlers}
        if missing:
            raise ValueError(f"no handler for job kind(s): {', '.join(sorted(missing))}")
        strategy = _Decisions()
        self._register_pruning()
        for kind in handlers:
            queue.require_known(kind)
            queue.app.task(
                name=kind.name, queue=kind.queue, priority=kind.priority, retry=strategy
            )(self._task_body(kind))

    def _register_pruning(self) -> None:
        """Hourly, forget the queue's finished entries after three days.

        The tenant-visible history stays in ``jobs``; dead entries stay until an operator acts,
        because a retry wakes them.
        """
        manager = self.queue.app.job_manager

        async def prune_queue(timestamp: int) -> None:
            await manager.delete_old_jobs(nb_hours=_QUEUE_RETENTION_HOURS)

        task = self.queue.app.task(name="platform.prune_queue", queue="default")(prune_queue)
        self.queue.app.periodic(cron="17 * * * *", periodic_id="platform.prune_queue")(task)

    def every(
        self,
        kind: JobKind,
        cron: str,
        tenants: Callable[[], Awaitable[Sequence[UUID]]],
    ) -> None:
        """Enqueue ``kind`` for every active tenant on a cron schedule.

        The schedule itself is the library's periodic task (one deferral per tick across all
        workers); the tick only fans out ordinary tenant jobs, deduplicated so a slow tenant
        never piles up ticks.
        """
        self.queue.require_known(kind)

        async def fan_out(timestamp: int) -> None:
            for tenant_id in await tenants():
                async with self.database.transaction(tenant_id) as conn:
                    scheduler = self._scheduling.in_transaction(conn, tenant_id)
                    await scheduler.enqueue(kind, {"tick": timestamp}, dedup_key="periodic")

        task = self.queue.app.task(name=f"periodic.{kind.name}", queue=kind.queue)(fan_out)
        self.queue.app.periodic(cron=cron, periodic_id=kind.name)(task)

    def _task_body(self, kind: JobKind) -> Any:
        async def body(**args: Any) -> None:
            await self._run(kind, args)

        body.__name__ = kind.name.replace(".", "_")
        return body

    async def _run(self, kind: JobKind, args: Mapping[str, Any]) -> None:
        tenant_id = _parse_uuid(args.get("tenant_id"))
        job_id = _parse_uuid(args.get("job_id"))
        if tenant_id is None or job_id is None:
            # Fail closed: no tenant, no context to run in; the library marks it failed.
            log.error("job refused: no tenant", kind=kind.name, args=sorted(args))
            raise MissingTenant(f"{kind.name} job carried no valid tenant_id/job_id")
        with structlog.contextvars.bound_contextvars(
            tenant_id=str(tenant_id), job_id=str(job_id), job_kind=kind.name
        ):
            await self._run_in_tenant(kind, tenant_id, job_id)

    async def _run_in_tenant(self, kind: JobKind, tenant_id: UUID, job_id: UUID) -> None:
        ledger = SqlJobLedger(self.database, tenant_id)
        started = await ledger.start(job_id, self._clock.now())
        if started is None:
            # Finished, discarded, or not this tenant's: nothing to do, nothing to reveal.
            log.info("job skipped: not startable in its tenant")
            return
        if started.kind != kind.name:
            mismatch = f"queued as {kind.name}, stored as {started.kind}"
            await ledger.bury(job_id, mismatch, self._clock.now())
            raise _Buried()
        if started.attempts > kind.max_attempts:
            # The previous attempt's worker died mid-job (the lease ran out) on the last attempt.
            await ledger.bury(job_id, "the worker was lost on the last attempt", self._clock.now())
            raise _Buried()

        self._count("runs", kind)

        async def progress(done: int, total: int | None = None) -> None:
            await ledger.progress(job_id, done, total, self._clock.now())

        context = JobContext(
            tenant_id=tenant_id,
            job_id=job_id,
            kind=kind.name,
            attempt=started.attempts,
            payload=started.payload,
            progress=progress,
        )
        began = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(kind.timeout_seconds) as limit:
                result = await self._handlers[kind](context)
        except RetryLater as later:
            self._count("postponed", kind)
            await ledger.release(job_id, later.at, later.reason, self._clock.now(), refund=True)
            log.info("job postponed", reason=later.reason, until=later.at.isoformat())
            raise _Reschedule(later.at) from None
        except asyncio.CancelledError:
            # The drain ran out or the library aborted it: back to the queue, no attempt spent.
            now = self._clock.now()
            await asyncio.shield(ledger.release(job_id, now, None, now, refund=True))
            log.warning("job released unfinished")
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and limit.expired():
                error = f"timed out after {kind.timeout_seconds:g} s"
            else:
                error = describe_error(exc)
            self._count("failures", kind)
            await self._after_failure(kind, ledger, job_id, started.attempts, error, exc)
        else:
            await ledger.succeed(job_id, result, self._clock.now())
            self._count("succeeded", kind)
            log.info(
                "job succeeded",
                attempt=started.attempts,
                seconds=round(asyncio.get_running_loop().time() - began, 3),
            )

    async def _after_failure(
        self,
        kind: JobKind,
        ledger: SqlJobLedger,
        job_id: UUID,
        attempts: int,
        error: str,
        exc: Exception,
    ) -> None:
        now = self._clock.now()
        decision = after_failure(kind, attempts, now, permanent=isinstance(exc, PermanentJobError))
        if isinstance(decision, GiveUp):
            await ledger.bury(job_id, error, now)
            self._count("dead", kind)
            log.error("job dead", attempt=attempts, error=error, why=decision.reason)
            raise _Buried() from exc
        await ledger.fail(job_id, error, decision.at, now)
        self._count("retries", kind)
        log.warning(
            "job attempt failed", attempt=attempts, error=error, retry_at=decision.at.isoformat()
        )
        raise _Reschedule(decision.at) from exc

    def _count(self, counter: str, kind: JobKind) -> None:
        if self._counters is not None:
            getattr(self._counters, counter).labels(kind.queue, kind.name).inc()
