"""The tenant-scoped ``jobs`` table: what a tenant follows about its jobs, under RLS."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.domain.model import Job, JobState, JsonObject
from impextech.jobs.service.ports import JobCounts, JobPage, Started
from impextech.kernel.db import Connection, Database, SqlUnitOfWork

COLUMNS = (
    "id, tenant_id, kind, queue, state, attempts, max_attempts, progress_done, progress_total,"
    " result, last_error, created_by, created_at, updated_at, started_at, finished_at,"
    " next_attempt_at"
)
# Finished jobs never run again; everything else may be (re)started by a worker.
_STARTABLE = "state IN ('queued', 'running', 'failed')"


def _and(clauses: Sequence[str]) -> str:
    """Optional filters after the tenant predicate, which every statement spells out itself."""
    return "".join(f" AND {clause}" for clause in clauses)


def job_from_row(row: Any) -> Job:
    return Job(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        queue=row.queue,
        state=JobState(row.state),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        result=row.result,
        last_error=row.last_error,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        next_attempt_at=row.next_attempt_at,
    )


class SqlJobStore:
    """One tenant's jobs; the tenant is also the transaction's RLS setting."""

    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant = tenant_id

    async def get(self, job_id: UUID) -> Job | None:
        cur = await self._conn.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE tenant_id = %s AND id = %s", (self._tenant, job_id)
        )
        row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def get_for_update(self, job_id: UUID) -> Job | None:
        cur = await self._conn.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE tenant_id = %s AND id = %s FOR UPDATE",
            (self._tenant, job_id),
        )
        row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def list(
        self, state: JobState | None, after: tuple[datetime, UUID] | None, limit: int
    ) -> JobPage:
        clauses: list[str] = []
        params: dict[str, Any] = {"t": self._tenant, "limit": limit + 1}
        if state is not None:
            clauses.append("state = %(state)s")
            params["state"] = state.value
        if after is not None:
            clauses.append("(created_at, id) < (%(k)s, %(kid)s)")
            params["k"], params["kid"] = after
        cur = await self._conn.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE tenant_id = %(t)s{_and(clauses)}"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            params,
        )
        rows = await cur.fetchall()
        items = [job_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return JobPage(items, (items[-1].created_at, items[-1].id) if more and items else None)

    async def counts(self) -> JobCounts:
        cur = await self._conn.execute(
            "SELECT state, count(*) AS n,"
            " min(created_at) FILTER (WHERE state IN ('queued', 'failed')) AS oldest"
            " FROM jobs WHERE tenant_id = %s GROUP BY state",
            (self._tenant,),
        )
        rows = await cur.fetchall()
        by_state = dict.fromkeys(JobState, 0)
        oldest: datetime | None = None
        for row in rows:
            by_state[JobState(row.state)] = row.n
            if row.oldest is not None and (oldest is None or row.oldest < oldest):
                oldest = row.oldest
        return JobCounts(by_state, oldest)

    async def requeue_dead(self, job_id: UUID, now: datetime) -> int | None:
        cur = await self._conn.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, last_error = NULL,"
            " next_attempt_at = NULL, finished_at = NULL, updated_at = %s"
            " WHERE tenant_id = %s AND id = %s AND state = 'dead' RETURNING queue_job_id",
            (now, self._tenant, job_id),
        )
        row = await cur.fetchone()
        return row.queue_job_id if row else None

    async def discard(self, job_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE jobs SET state = 'discarded', updated_at = %s"
            " WHERE tenant_id = %s AND id = %s AND state = 'dead'",
            (now, self._tenant, job_id),
        )


class SqlJobLedger:
    """The worker's bookkeeping: each mark is one tenant transaction in one round trip.

    The marks commit without waiting for their WAL flush: each is followed by the job library's
    own durable commit (fetch, finish or retry), which flushes it too, and a mark lost in a crash
    is harmless because the library's state decides what runs again and handlers are idempotent.
    """

    def __init__(self, database: Database, tenant_id: UUID) -> None:
        self._db = database
        self._tenant = tenant_id

    async def _mark(self, query: LiteralString, params: tuple[Any, ...]) -> Any | None:
        return await self._db.execute_once(self._tenant, query, params, durable=False)

    async def start(self, job_id: UUID, now: datetime) -> Started | None:
        row = await self._mark(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = %s,"
            " started_at = coalesce(started_at, %s), next_attempt_at = NULL"
            f" WHERE tenant_id = %s AND id = %s AND {_STARTABLE} RETURNING kind, attempts, payload",
            (now, now, self._tenant, job_id),
        )
        return Started(row.kind, row.attempts, row.payload) if row else None

    async def progress(self, job_id: UUID, done: int, total: int | None, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET progress_done = %s, progress_total = coalesce(%s, progress_total),"
            " updated_at = %s WHERE tenant_id = %s AND id = %s AND state = 'running'",
            (done, total, now, self._tenant, job_id),
        )

    async def succeed(self, job_id: UUID, result: JsonObject | None, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'succeeded', result = %s, last_error = NULL,"
            f" finished_at = %s, updated_at = %s WHERE tenant_id = %s AND id = %s AND {_STARTABLE}",
            (Jsonb(result) if result is not None else None, now, now, self._tenant, job_id),
        )

    async def fail(self, job_id: UUID, error: str, retry_at: datetime, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'failed', last_error = %s, next_attempt_at = %s,"
            f" updated_at = %s WHERE tenant_id = %s AND id = %s AND {_STARTABLE}",
            (error, retry_at, now, self._tenant, job_id),
        )

    async def bury(self, job_id: UUID, error: str, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'dead', last_error = %s, next_attempt_at = NULL,"
            f" finished_at = %s, updated_at = %s WHERE tenant_id = %s AND id = %s AND {_STARTABLE}",
            (error, now, now, self._tenant, job_id),
        )

    async def release(
        self, job_id: UUID, at: datetime, note: str | None, now: datetime, *, refund: bool
    ) -> None:
        """Back to the queue; ``refund`` gives back the attempt that did not really happen."""
        await self._mark(
            "UPDATE jobs SET state = 'queued', next_attempt_at = %s,"
            " last_error = coalesce(%s, last_error),"
            " attempts = CASE WHEN %s THEN greatest(attempts - 1, 0) ELSE attempts END,"
            f" updated_at = %s WHERE tenant_id = %s AND id = %s AND {_STARTABLE}",
            (at, note, refund, now, self._tenant, job_id),
        )


class ProcrastinateQueueControl:
    def __init__(self, conn: Connection, queue: ProcrastinateQueue) -> None:
        self._conn = conn
        self._queue = queue

    async def wake_dead(self, queue_job_id: int, at: datetime) -> None:
        await self._queue.wake(self._conn, queue_job_id, at)


class SqlJobsUnitOfWork(SqlUnitOfWork):
    jobs: SqlJobStore
    queue: ProcrastinateQueueControl

    def __init__(
        self, database: Database, tenant_id: UUID | None, queue: ProcrastinateQueue
    ) -> None:
        super().__init__(database, tenant_id)
        self._job_queue = queue

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.jobs = SqlJobStore(conn, self.tenant_id)
        self.queue = ProcrastinateQueueControl(conn, self._job_queue)
