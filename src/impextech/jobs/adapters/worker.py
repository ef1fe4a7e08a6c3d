"""The worker process: library workers per queue, signals, drain, leases and stalled jobs.

What each job does once fetched is the runtime's (``runtime.JobRuntime``); this module only
decides how many jobs a process runs at once, how it stops, and how a job whose worker vanished
gets back to the queue.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from uuid import UUID

import structlog
from procrastinate import exceptions as pexc
from procrastinate.worker import Worker

from impextech.jobs.adapters.metrics import JobCounters
from impextech.jobs.adapters.registry import JOB_REGISTRY
from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.settings import JobsSettings
from impextech.kernel.contexts import Assembly, Process
from impextech.kernel.tenants import TENANT_ROSTER

log = structlog.get_logger("impextech.jobs")


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

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        app = self._runtime.queue.app
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        async with app.open_async():
            workers = [
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
                for w in workers
            ]
            recovery = asyncio.create_task(self._recover_stalled(), name="stalled-job recovery")
            log.info("worker started", queues=dict(self._queues), lease_seconds=self._lease)
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait([*runs, stopper], return_when=asyncio.FIRST_COMPLETED)
            recovery.cancel()
            for worker in workers:
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


def worker_process(assembly: Assembly, *, name: str = "worker") -> WorkerProcess:
    """The worker of an assembled WORKER process: every declared kind, with its handler.

    The caller closes the assembly once the worker has stopped (clients, then the pool).
    """
    if assembly.process is not Process.WORKER:
        raise ValueError("a worker runs in an assembly built for Process.WORKER")
    settings = assembly.settings.section(JobsSettings)
    registry = assembly.require(JOB_REGISTRY)
    roster = assembly.require(TENANT_ROSTER)
    counters = JobCounters()
    for collector in counters.collectors:
        assembly.add_collector(collector)
    runtime = JobRuntime(
        assembly.database, registry.queue, registry.handlers, assembly.clock, counters=counters
    )

    async def active_tenant_ids() -> list[UUID]:
        return [tenant.id for tenant in await roster.active_tenants()]

    for periodic in registry.periodic:
        runtime.every(periodic.kind, periodic.cron, active_tenant_ids)
    return WorkerProcess(
        runtime,
        settings.worker_queues,
        lease_seconds=settings.job_lease_seconds,
        drain_seconds=settings.worker_drain_seconds,
        name=name,
    )
