"""The tenant-scoped ``jobs`` table: what a tenant follows about its jobs, under RLS."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.domain.model import Job, JobKind, JobState, JsonObject
from impextech.jobs.service.ports import JobCounts, JobPage, JobRequest, Started
from impextech.kernel.db import Connection, Database, SqlUnitOfWork

COLUMNS = (
    "id, tenant_id, kind, queue, state, attempts, max_attempts, progress_done, progress_total,"
    " result, last_error, created_by, created_at, updated_at, started_at, finished_at,"
    " next_attempt_at"
)
# Finished jobs never run again; everything else may be (re)started by a worker.
_STARTABLE = "state IN ('queued', 'running', 'failed')"


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
        cur = await self._conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def get_for_update(self, job_id: UUID) -> Job | None:
        cur = await self._conn.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE id = %s FOR UPDATE", (job_id,)
        )
        row = await cur.fetchone()
        return job_from_row(row) if row else None

    async def list(
        self, state: JobState | None, after: tuple[datetime, UUID] | None, limit: int
    ) -> JobPage:
        clauses = ["tenant_id = %(t)s"]
        params: dict[str, Any] = {"t": self._tenant, "limit": limit + 1}
        if state is not None:
            clauses.append("state = %(state)s")
            params["state"] = state.value
        if after is not None:
            clauses.append("(created_at, id) < (%(k)s, %(kid)s)")
            params["k"], params["kid"] = after
        cur = await self._conn.execute(
            f"SELECT {COLUMNS} FROM jobs WHERE {' AND '.join(clauses)}"
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
            " WHERE id = %s AND state = 'dead' RETURNING queue_job_id",
            (now, job_id),
        )
        row = await cur.fetchone()
        return row.queue_job_id if row else None

    async def discard(self, job_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE jobs SET state = 'discarded', updated_at = %s WHERE id = %s AND state = 'dead'",
            (now, job_id),
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
            f" WHERE id = %s AND {_STARTABLE} RETURNING kind, attempts, payload",
            (now, now, job_id),
        )
        return Started(row.kind, row.attempts, row.payload) if row else None

    async def progress(self, job_id: UUID, done: int, total: int | None, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET progress_done = %s, progress_total = coalesce(%s, progress_total),"
            " updated_at = %s WHERE id = %s AND state = 'running'",
            (done, total, now, job_id),
        )

    async def succeed(self, job_id: UUID, result: JsonObject | None, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'succeeded', result = %s, last_error = NULL,"
            f" finished_at = %s, updated_at = %s WHERE id = %s AND {_STARTABLE}",
            (Jsonb(result) if result is not None else None, now, now, job_id),
        )

    async def fail(self, job_id: UUID, error: str, retry_at: datetime, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'failed', last_error = %s, next_attempt_at = %s,"
            f" updated_at = %s WHERE id = %s AND {_STARTABLE}",
            (error, retry_at, now, job_id),
        )

    async def bury(self, job_id: UUID, error: str, now: datetime) -> None:
        await self._mark(
            "UPDATE jobs SET state = 'dead', last_error = %s, next_attempt_at = NULL,"
            f" finished_at = %s, updated_at = %s WHERE id = %s AND {_STARTABLE}",
            (error, now, now, job_id),
        )

    async def release(
        self, job_id: UUID, at: datetime, note: str | None, now: datetime, *, refund: bool
    ) -> None:
        """Back to the queue; ``refund`` gives back the attempt that did not really happen."""
        await self._mark(
            "UPDATE jobs SET state = 'queued', next_attempt_at = %s,"
            " last_error = coalesce(%s, last_error),"
            " attempts = CASE WHEN %s THEN greatest(attempts - 1, 0) ELSE attempts END,"
            f" updated_at = %s WHERE id = %s AND {_STARTABLE}",
            (at, note, refund, now, job_id),
        )


class SqlJobScheduler:
    """Enqueues in the caller's transaction: the job row and its queue entry commit together.

    A pending job with the same kind and ``dedup_key`` is joined instead of duplicated; the row
    lock taken by the upsert makes a worker that is about to start that job wait for this
    transaction, so the job reads the state this transaction commits.
    """

    def __init__(
        self, conn: Connection, tenant_id: UUID, queue: ProcrastinateQueue, now: datetime
    ) -> None:
        self._conn = conn
        self._tenant = tenant_id
        self._queue = queue
        self._now = now

    async def enqueue(
        self,
        kind: JobKind,
        payload: JsonObject,
        *,
        created_by: UUID | None = None,
        dedup_key: str | None = None,
        lock_key: str | None = None,
    ) -> UUID:
        request = JobRequest(payload, dedup_key=dedup_key, lock_key=lock_key)
        [job_id] = await self.enqueue_many(kind, [request], created_by=created_by)
        return job_id

    async def enqueue_many(
        self, kind: JobKind, requests: Sequence[JobRequest], *, created_by: UUID | None = None
    ) -> list[UUID]:
        self._queue.require_known(kind)
        # Twins inside the batch join the first, as they would one by one (and one statement
        # may not upsert the same row twice).
        first_of: dict[str, int] = {}
        unique: list[JobRequest] = []
        position: list[int] = []
        for request in requests:
            if request.dedup_key is not None and request.dedup_key in first_of:
                position.append(first_of[request.dedup_key])
                continue
            if request.dedup_key is not None:
                first_of[request.dedup_key] = len(unique)
            position.append(len(unique))
            unique.append(request)
        if not unique:
            return []
        fresh = [uuid.uuid4() for _ in unique]
        cur = await self._conn.execute(
            "INSERT INTO jobs (tenant_id, id, kind, queue, state, max_attempts, payload,"
            " dedup_key, lock_key, created_by, created_at, updated_at)"
            " SELECT %(t)s, r.id, %(kind)s, %(queue)s, 'queued', %(max)s, r.payload, r.dedup,"
            " r.lock, %(by)s, %(now)s, %(now)s"
            " FROM unnest(%(ids)s::uuid[], %(payloads)s::jsonb[], %(dedups)s::text[],"
            " %(locks)s::text[]) WITH ORDINALITY AS r(id, payload, dedup, lock, n)"
            " ORDER BY r.dedup, r.n"  # one lock order for every batch: no deadlocks
            " ON CONFLICT (tenant_id, kind, dedup_key)"
            " WHERE state = 'queued' AND dedup_key IS NOT NULL"
            " DO UPDATE SET updated_at = excluded.updated_at"
            " RETURNING id, dedup_key",
            {
                "t": self._tenant,
                "kind": kind.name,
                "queue": kind.queue,
                "max": kind.max_attempts,
                "by": created_by,
                "now": self._now,
                "ids": fresh,
                "payloads": [Jsonb(dict(r.payload)) for r in unique],
                "dedups": [r.dedup_key for r in unique],
                "locks": [r.lock_key for r in unique],
            },
        )
        rows = await cur.fetchall()
        inserted = {row.id for row in rows}
        joined = {row.dedup_key: row.id for row in rows if row.dedup_key is not None}
        ids = [
            fresh[i] if fresh[i] in inserted else UUID(str(joined[unique[i].dedup_key]))
            for i in range(len(unique))
        ]
        new = [(fresh[i], unique[i].lock_key) for i in range(len(unique)) if fresh[i] in inserted]
        if new:
            queue_ids = await self._queue.defer_many(self._conn, kind, self._tenant, new)
            await self._conn.execute(
                "UPDATE jobs SET queue_job_id = q.queue_id"
                " FROM unnest(%s::uuid[], %s::bigint[]) AS q(id, queue_id) WHERE jobs.id = q.id",
                ([job_id for job_id, _ in new], queue_ids),
            )
        return [ids[p] for p in position]


class ProcrastinateQueueControl:
    def __init__(self, conn: Connection, queue: ProcrastinateQueue) -> None:
        self._conn = conn
        self._queue = queue

    async def wake_dead(self, queue_job_id: int) -> None:
        await self._queue.wake(self._conn, queue_job_id)


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
