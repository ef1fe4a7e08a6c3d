"""Procrastinate, the job library under our jobs: durable queues in the same PostgreSQL.

The library's rows carry only ``{tenant_id, job_id}``; the tenant-visible truth is the ``jobs``
table. Deferring runs on the caller's own connection, so a job exists exactly when the change
that asked for it commits (DESIGN §3: jobs are deferred atomically with their state).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from procrastinate import App, PsycopgConnector
from procrastinate import jobs as pjobs
from procrastinate.exceptions import ConnectorException
from procrastinate.sql import queries

from impextech.jobs.domain.model import JobKind, JobNotDead
from impextech.kernel.db import Connection


class UnknownJobKind(LookupError):
    pass


class ProcrastinateQueue:
    """The library's app and connector, and every job kind this process knows."""

    def __init__(
        self, conninfo: str, kinds: Iterable[JobKind] = (), *, pool_size: int = 10
    ) -> None:
        # The pool opens only in processes that run workers or talk to the queue directly;
        # deferring from a request uses the request's own connection.
        self.connector = PsycopgConnector(conninfo=conninfo, min_size=1, max_size=pool_size)
        self.app = App(connector=self.connector)
        self.kinds: dict[str, JobKind] = {}
        for kind in kinds:
            self.declare(kind)

    def declare(self, kind: JobKind) -> None:
        if kind.name in self.kinds:
            raise ValueError(f"job kind {kind.name!r} declared twice")
        self.kinds[kind.name] = kind

    def require_known(self, kind: JobKind) -> None:
        if self.kinds.get(kind.name) != kind:
            raise UnknownJobKind(f"job kind {kind.name!r} is not registered in this process")

    @property
    def queue_names(self) -> set[str]:
        return {kind.queue for kind in self.kinds.values()}

    @staticmethod
    def _job(kind: JobKind, tenant_id: UUID, job_id: UUID, lock_key: str | None) -> pjobs.Job:
        return pjobs.Job(
            id=None,
            queue=kind.queue,
            priority=kind.priority,
            # Locks are per tenant: one tenant's key never serialises another tenant's jobs.
            lock=f"{tenant_id}:{lock_key}" if lock_key else None,
            queueing_lock=None,
            task_name=kind.name,
            task_kwargs={"tenant_id": str(tenant_id), "job_id": str(job_id)},
        )

    async def defer_many(
        self,
        conn: Connection,
        kind: JobKind,
        tenant_id: UUID,
        jobs: Sequence[tuple[UUID, str | None]],
    ) -> list[int]:
        """Defer ``(job_id, lock_key)`` pairs in one statement; their queue ids, in order."""
        deferred = await self.app.job_manager.batch_defer_jobs_async(
            [self._job(kind, tenant_id, job_id, lock_key) for job_id, lock_key in jobs],
            connection=conn,
        )
        ids = [job.id for job in deferred]
        assert all(i is not None for i in ids)
        return [i for i in ids if i is not None]

    async def wake(self, conn: Connection, queue_job_id: int, at: datetime) -> None:
        """A failed (dead) queue job goes back to its queue, due ``at``, in the caller's
        transaction."""
        try:
            await self.connector.execute_query_all_async_with_connection(
                conn,
                query=queries["retry_job"],
                job_id=queue_job_id,
                retry_at=at,
                new_priority=None,
                new_queue_name=None,
                new_lock=None,
            )
        except ConnectorException:
            # Our row went dead a moment before the library recorded the failure.
            raise JobNotDead("the queue has not released this job yet; try again") from None
