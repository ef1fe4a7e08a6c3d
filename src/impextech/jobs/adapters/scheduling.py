"""Enqueueing jobs inside the caller's transaction, and the one way callers get to do it.

A process builds one ``JobScheduling`` from its queue and its clock; whoever changes state and
must queue work asks it for a scheduler over the transaction it is already in, so the job row,
its queue entry and the change commit (or roll back) together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from uuid import UUID

from psycopg.types.json import Jsonb

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.domain.model import JobKind, JsonObject
from impextech.jobs.service.ports import JobRequest, JobScheduler
from impextech.kernel.contexts import Key
from impextech.kernel.db import Connection
from impextech.kernel.domain.clock import Clock


class JobScheduling:
    """Built once per process; hands out schedulers bound to a caller's transaction."""

    def __init__(self, queue: ProcrastinateQueue, clock: Clock) -> None:
        self._queue = queue
        self._clock = clock

    def in_transaction(self, conn: Connection, tenant_id: UUID) -> JobScheduler:
        """A scheduler whose jobs exist exactly when ``conn``'s transaction commits.

        ``conn`` must be in ``tenant_id``'s transaction (its RLS setting names that tenant).
        """
        return SqlJobScheduler(conn, tenant_id, self._queue, self._clock)


JOB_SCHEDULING: Key[JobScheduling] = Key("job scheduling")


class SqlJobScheduler:
    """Enqueues in the caller's transaction: the job row and its queue entry commit together.

    A pending job with the same kind and ``dedup_key`` is joined instead of duplicated; the row
    lock taken by the upsert makes a worker that is about to start that job wait for this
    transaction, so the job reads the state this transaction commits.
    """

    def __init__(
        self, conn: Connection, tenant_id: UUID, queue: ProcrastinateQueue, clock: Clock
    ) -> None:
        self._conn = conn
        self._tenant = tenant_id
        self._queue = queue
        self._clock = clock

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
                "now": self._clock.now(),
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
                " FROM unnest(%s::uuid[], %s::bigint[]) AS q(id, queue_id)"
                " WHERE jobs.tenant_id = %s AND jobs.id = q.id",
                ([job_id for job_id, _ in new], queue_ids, self._tenant),
            )
        return [ids[p] for p in position]
