"""Running jobs: the wrapper around every handler, and the worker process.

Each job kind becomes one Procrastinate task whose body is ``_run``: it refuses a job without a
tenant, marks the job running in that tenant's transaction, runs the handler under the kind's
time limit, and records the outcome. The decision after a failure (retry after a jittered wait, or
the dead letters) is the domain's (``after_failure``); Procrastinate only carries it out.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.worker import Worker

from impextech.jobs.adapters.metrics import JobCounters
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.sql import SqlJobLedger, SqlJobScheduler
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
from impextech.kernel.domain.clock import Clock, SystemClock

log = structlog.get_logger("impextech.jobs")

# An error in our own bookkeeping (the database went away mid-job) is not the handler's failure;
# the library retries such a job after a short wait, up to this many times in all.
_BOOKKEEPING_RETRIES = 50
QUEUE_RETENTION_HOURS = 72


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
        clock: Clock | None = None,
        counters: JobCounters | None = None,
    ) -> None:
        self.database = database
        self._counters = counters
        self.queue = queue
        self._clock = clock or SystemClock()
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
            await manager.delete_old_jobs(nb_hours=QUEUE_RETENTION_HOURS)

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
                    scheduler = SqlJobScheduler(conn, tenant_id, self.queue, self._clock.now())
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
            await self._finish_dead(tenant_id, job_id, f"queued as {kind.name}, stored as "
                                    f"{started.kind}")  # fmt: skip
            raise _Buried()
        if started.attempts > kind.max_attempts:
            # The previous attempt's worker died mid-job (the lease ran out) on the last attempt.
            await self._finish_dead(tenant_id, job_id, "the worker was lost on the last attempt")
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
            await self._release(tenant_id, job_id, later.at, later.reason, refund=True)
            log.info("job postponed", reason=later.reason, until=later.at.isoformat())
            raise _Reschedule(later.at) from None
        except asyncio.CancelledError:
            # The drain ran out or the library aborted it: back to the queue, no attempt spent.
            await asyncio.shield(
                self._release(tenant_id, job_id, self._clock.now(), None, refund=True)
            )
            log.warning("job released unfinished")
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and limit.expired():
                error = f"timed out after {kind.timeout_seconds:g} s"
            else:
                error = describe_error(exc)
            self._count("failures", kind)
            await self._after_failure(kind, tenant_id, job_id, started.attempts, error, exc)
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
        tenant_id: UUID,
        job_id: UUID,
        attempts: int,
        error: str,
        exc: Exception,
    ) -> None:
        now = self._clock.now()
        decision = after_failure(kind, attempts, now, permanent=isinstance(exc, PermanentJobError))
        if isinstance(decision, GiveUp):
            await self._finish_dead(tenant_id, job_id, error)
            self._count("dead", kind)
            log.error("job dead", attempt=attempts, error=error, why=decision.reason)
            raise _Buried() from exc
        await SqlJobLedger(self.database, tenant_id).fail(job_id, error, decision.at, now)
        self._count("retries", kind)
        log.warning(
            "job attempt failed", attempt=attempts, error=error, retry_at=decision.at.isoformat()
        )
        raise _Reschedule(decision.at) from exc

    def _count(self, counter: str, kind: JobKind) -> None:
        if self._counters is not None:
            getattr(self._counters, counter).labels(kind.queue, kind.name).inc()

    async def _finish_dead(self, tenant_id: UUID, job_id: UUID, error: str) -> None:
        await SqlJobLedger(self.database, tenant_id).bury(job_id, error, self._clock.now())

    async def _release(
        self, tenant_id: UUID, job_id: UUID, at: datetime, note: str | None, *, refund: bool
    ) -> None:
        await SqlJobLedger(self.database, tenant_id).release(
            job_id, at, note, self._clock.now(), refund=refund
        )


def fetch_loops(slots: int, per_loop: int = 2, most: int = 4) -> list[int]:
    """A queue's slots, split over several library workers.

    A library worker fetches one job per round trip, so one fetch loop caps how fast a process
    starts jobs whatever its slots (bench/jobs measured it); a few loops per queue lift that.
    """
    loops = max(1, min(most, slots // per_loop))
    return [slots // loops + (1 if i < slots % loops else 0) for i in range(loops)]


class WorkerProcess:
    """One ``impextech worker``: library workers per queue, each queue with its own slots.

    Separate workers per queue mean bulk imports can fill every bulk slot and an urgent job still
    starts at once; a queue's slots are spread over a few workers (``fetch_loops``). Heartbeats
    every third of the lease; a job whose worker stopped beating for a whole lease (SIGKILL, a
    frozen host) is handed back to the queue by whichever worker notices.
    """

    def __init__(
        self,
        runtime: JobRuntime,
        queues: tuple[tuple[str, int], ...],
        *,
        lease_seconds: float,
        drain_seconds: float,
        name: str = "worker",
        poll_seconds: float = 1.0,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        unused = {q for q, _ in queues} - runtime.queue.queue_names
        if unused:
            log.warning("no job kind uses these queues yet", queues=sorted(unused))
        self._runtime = runtime
        self._queues = queues
        self._lease = lease_seconds
        self._drain = drain_seconds
        self._name = name
        # New jobs arrive by LISTEN/NOTIFY at once; polling finds retries whose time has come.
        self._poll = poll_seconds
        self._on_stop = tuple(on_stop)  # what the handlers hold open (HTTP clients)
        self._stop = asyncio.Event()
        self.workers: list[Worker] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        app = self._runtime.queue.app
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        async with app.open_async():
            self.workers = [
                Worker(
                    app=app,
                    queues=[queue],
                    name=f"{self._name}:{queue}:{n}",
                    concurrency=share,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=self._drain,
                    update_heartbeat_interval=max(self._lease / 3, 0.5),
                    stalled_worker_timeout=self._lease,
                    fetch_job_polling_interval=self._poll,
                    listen_notify=True,
                )
                for queue, slots in self._queues
                for n, share in enumerate(fetch_loops(slots))
            ]
            runs = [
                asyncio.create_task(w.run(), name=f"worker {w.worker_name}")  # type: ignore[no-untyped-call]
                for w in self.workers
            ]
            recovery = asyncio.create_task(self._recover_stalled(), name="stalled-job recovery")
            log.info("worker started", queues=dict(self._queues), lease_seconds=self._lease)
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait([*runs, stopper], return_when=asyncio.FIRST_COMPLETED)
            recovery.cancel()
            for worker in self.workers:
                worker.stop()  # type: ignore[no-untyped-call]
            # Each library worker waits for its running jobs up to the drain time, then aborts
            # them, and our wrapper releases each back to the queue.
            results = await asyncio.gather(*runs, return_exceptions=True)
            stopper.cancel()
            with suppress(asyncio.CancelledError):
                await recovery
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            for close in self._on_stop:
                await close()
            failures = [r for r in results if isinstance(r, BaseException)]
            log.info("worker stopped")
            if failures:
                raise failures[0]

    async def _recover_stalled(self) -> None:
        manager = self._runtime.queue.app.job_manager
        while True:
            await asyncio.sleep(max(self._lease / 2, 0.5))
            try:
                stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self._lease)
                for job in stalled:
                    with suppress(pexc.ConnectorException):  # another worker got there first
                        await manager.retry_job(job)
                        log.warning("stalled job handed back", queue_job_id=job.id)
                await manager.prune_stalled_workers(self._lease)
            except pexc.ConnectorException as exc:
                log.warning("stalled-job recovery failed; will try again", error=str(exc))
