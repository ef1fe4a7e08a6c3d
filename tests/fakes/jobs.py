"""Fakes of the jobs context's ports: the job store, the queue's side, the scheduler, the ledger.

``FakeJobs`` holds one platform's jobs in memory. The scheduler it hands out writes in a caller's
transaction like ``SqlJobScheduler`` (a pending job with the same kind and dedup key is joined),
and ``FakeJobLedger`` moves jobs through their states as a worker's ``SqlJobLedger`` does, each
mark committed on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from impextech.jobs.adapters.queue import UnknownJobKind
from impextech.jobs.domain.model import Job, JobKind, JobNotDead, JobState, JsonObject
from impextech.jobs.service.ports import JobCounts, JobPage, JobRequest, Started
from impextech.kernel.domain.clock import Clock
from tests.fakes.memory import MemoryDatabase, MemoryTransaction, MemoryUnitOfWork

JOBS = "jobs"
DEDUP = "job_dedup"  # lock names only: one per (tenant, kind, dedup key)
WAKES = "queue_wakes"

_STARTABLE = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.FAILED})


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A row of the jobs table: the job as a tenant sees it, and what only the platform sees."""

    job: Job
    payload: JsonObject
    dedup_key: str | None
    lock_key: str | None
    queue_job_id: int


@dataclass(frozen=True, slots=True)
class Wake:
    queue_job_id: int
    at: datetime


class _Rows:
    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    def _row(self, job_id: UUID) -> StoredJob | None:
        row: StoredJob | None = self._tx.get(JOBS, job_id)
        return row if row is not None and row.job.tenant_id == self._tenant else None

    def _all(self) -> list[StoredJob]:
        return [r for r in self._tx.rows(JOBS) if r.job.tenant_id == self._tenant]

    async def _set(self, row: StoredJob, **changes: object) -> None:
        job = replace(row.job, **changes)  # type: ignore[arg-type]
        await self._tx.put(JOBS, job.id, replace(row, job=job))


class FakeJobStore(_Rows):
    async def get(self, job_id: UUID) -> Job | None:
        row = self._row(job_id)
        return row.job if row else None

    async def get_for_update(self, job_id: UUID) -> Job | None:
        await self._tx.lock(JOBS, job_id)
        return await self.get(job_id)

    async def list(
        self, state: JobState | None, after: tuple[datetime, UUID] | None, limit: int
    ) -> JobPage:
        jobs = [r.job for r in self._all() if state is None or r.job.state is state]
        if after is not None:
            jobs = [j for j in jobs if (j.created_at, j.id) < after]
        jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        items = jobs[:limit]
        more = len(jobs) > limit and items
        return JobPage(items, (items[-1].created_at, items[-1].id) if more else None)

    async def counts(self) -> JobCounts:
        by_state = dict.fromkeys(JobState, 0)
        waiting = []
        for row in self._all():
            by_state[row.job.state] += 1
            if row.job.state in (JobState.QUEUED, JobState.FAILED):
                waiting.append(row.job.created_at)
        return JobCounts(by_state, min(waiting, default=None))

    async def requeue_dead(self, job_id: UUID, now: datetime) -> int | None:
        await self._tx.lock(JOBS, job_id)
        row = self._row(job_id)
        if row is None or row.job.state is not JobState.DEAD:
            return None
        await self._set(
            row,
            state=JobState.QUEUED,
            attempts=0,
            last_error=None,
            next_attempt_at=None,
            finished_at=None,
            updated_at=now,
        )
        return row.queue_job_id

    async def discard(self, job_id: UUID, now: datetime) -> None:
        await self._tx.lock(JOBS, job_id)
        row = self._row(job_id)
        if row is not None and row.job.state is JobState.DEAD:
            await self._set(row, state=JobState.DISCARDED, updated_at=now)


class FakeQueueControl:
    """Records each wake; one the test says the queue has not released is refused like the
    real queue refuses it."""

    def __init__(self, tx: MemoryTransaction, jobs: FakeJobs) -> None:
        self._tx = tx
        self._jobs = jobs

    async def wake_dead(self, queue_job_id: int, at: datetime) -> None:
        if queue_job_id in self._jobs.unreleased:
            raise JobNotDead("the queue has not released this job yet; try again")
        self._tx.append(WAKES, Wake(queue_job_id, at))


class FakeJobsUnitOfWork(MemoryUnitOfWork):
    jobs: FakeJobStore
    queue: FakeQueueControl

    def __init__(self, owner: FakeJobs, tenant_id: UUID) -> None:
        super().__init__(owner.db, tenant_id)
        self._owner = owner

    def _bind(self, tx: MemoryTransaction) -> None:
        self.jobs = FakeJobStore(tx, self.tenant_id)
        self.queue = FakeQueueControl(tx, self._owner)


class FakeJobScheduler(_Rows):
    """Enqueues in the caller's transaction: the jobs exist exactly when it commits."""

    def __init__(self, tx: MemoryTransaction, tenant_id: UUID, owner: FakeJobs) -> None:
        super().__init__(tx, tenant_id)
        self._owner = owner

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
        self._owner.require_known(kind)
        now = self._owner.clock.now()
        joined: dict[str, UUID] = {}
        ids: list[UUID] = []
        for request in sorted(requests, key=lambda r: r.dedup_key or ""):
            key = request.dedup_key
            if key is not None and key not in joined:
                await self._tx.lock(DEDUP, (self._tenant, kind.name, key))
                pending = self._pending(kind, key)
                if pending is not None:
                    await self._set(pending, updated_at=now)
                    joined[key] = pending.job.id
        for request in requests:
            key = request.dedup_key
            if key is not None and key in joined:
                ids.append(joined[key])
                continue
            job_id = uuid.uuid4()
            await self._tx.put(JOBS, job_id, self._new(kind, request, job_id, created_by, now))
            if key is not None:
                joined[key] = job_id
            ids.append(job_id)
        return ids

    def _pending(self, kind: JobKind, key: str) -> StoredJob | None:
        for row in self._all():
            if (row.job.kind, row.dedup_key, row.job.state) == (kind.name, key, JobState.QUEUED):
                return row
        return None

    def _new(
        self,
        kind: JobKind,
        request: JobRequest,
        job_id: UUID,
        created_by: UUID | None,
        now: datetime,
    ) -> StoredJob:
        job = Job(
            id=job_id,
            tenant_id=self._tenant,
            kind=kind.name,
            queue=kind.queue,
            state=JobState.QUEUED,
            attempts=0,
            max_attempts=kind.max_attempts,
            progress_done=None,
            progress_total=None,
            result=None,
            last_error=None,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            started_at=None,
            finished_at=None,
            next_attempt_at=None,
        )
        return StoredJob(
            job,
            dict(request.payload),
            request.dedup_key,
            request.lock_key,
            self._owner.db.next_id(),
        )


class FakeJobLedger:
    """A worker's marks, each committed in a transaction of its own like ``SqlJobLedger``'s."""

    def __init__(self, db: MemoryDatabase, tenant_id: UUID) -> None:
        self._db = db
        self._tenant = tenant_id

    async def _mark(
        self, job_id: UUID, allowed: Iterable[JobState], change: Callable[[Job], dict[str, object]]
    ) -> StoredJob | None:
        """Change the job if it is in one of the ``allowed`` states; the row as it was."""
        tx = self._db.begin()
        try:
            rows = _Rows(tx, self._tenant)
            await tx.lock(JOBS, job_id)
            row = rows._row(job_id)
            if row is None or row.job.state not in allowed:
                return None
            await rows._set(row, **change(row.job))
            await tx.commit()
            return row
        finally:
            await tx.rollback()

    async def start(self, job_id: UUID, now: datetime) -> Started | None:
        before = await self._mark(
            job_id,
            _STARTABLE,
            lambda job: {
                "state": JobState.RUNNING,
                "attempts": job.attempts + 1,
                "updated_at": now,
                "started_at": job.started_at or now,
                "next_attempt_at": None,
            },
        )
        if before is None:
            return None
        return Started(before.job.kind, before.job.attempts + 1, before.payload)

    async def progress(self, job_id: UUID, done: int, total: int | None, now: datetime) -> None:
        await self._mark(
            job_id,
            {JobState.RUNNING},
            lambda job: {
                "progress_done": done,
                "progress_total": total if total is not None else job.progress_total,
                "updated_at": now,
            },
        )

    async def succeed(self, job_id: UUID, result: JsonObject | None, now: datetime) -> None:
        await self._mark(
            job_id,
            _STARTABLE,
            lambda job: {
                "state": JobState.SUCCEEDED,
                "result": result,
                "last_error": None,
                "finished_at": now,
                "updated_at": now,
            },
        )

    async def fail(self, job_id: UUID, error: str, retry_at: datetime, now: datetime) -> None:
        await self._mark(
            job_id,
            _STARTABLE,
            lambda job: {
                "state": JobState.FAILED,
                "last_error": error,
                "next_attempt_at": retry_at,
                "updated_at": now,
            },
        )

    async def bury(self, job_id: UUID, error: str, now: datetime) -> None:
        await self._mark(
            job_id,
            _STARTABLE,
            lambda job: {
                "state": JobState.DEAD,
                "last_error": error,
                "next_attempt_at": None,
                "finished_at": now,
                "updated_at": now,
            },
        )

    async def release(
        self, job_id: UUID, at: datetime, note: str | None, now: datetime, *, refund: bool
    ) -> None:
        await self._mark(
            job_id,
            _STARTABLE,
            lambda job: {
                "state": JobState.QUEUED,
                "next_attempt_at": at,
                "last_error": note if note is not None else job.last_error,
                "attempts": max(job.attempts - 1, 0) if refund else job.attempts,
                "updated_at": now,
            },
        )


class FakeJobs:
    """One platform's jobs in memory, the units of work over them, and what tests look at."""

    def __init__(
        self,
        clock: Clock,
        kinds: Iterable[JobKind] | None = None,
        db: MemoryDatabase | None = None,
    ) -> None:
        self.db = db or MemoryDatabase()
        self.clock = clock
        # None: any kind is accepted (a unit test need not register its kinds).
        self.kinds = None if kinds is None else {kind.name: kind for kind in kinds}
        self.unreleased: set[int] = set()

    def require_known(self, kind: JobKind) -> None:
        if self.kinds is not None and self.kinds.get(kind.name) != kind:
            raise UnknownJobKind(f"job kind {kind.name!r} is not registered in this process")

    def uow(self, tenant_id: UUID) -> FakeJobsUnitOfWork:
        return FakeJobsUnitOfWork(self, tenant_id)

    def in_transaction(self, tx: MemoryTransaction, tenant_id: UUID) -> FakeJobScheduler:
        return FakeJobScheduler(tx, tenant_id, self)

    def ledger(self, tenant_id: UUID) -> FakeJobLedger:
        return FakeJobLedger(self.db, tenant_id)

    async def enqueue(
        self,
        tenant_id: UUID,
        kind: JobKind,
        payload: JsonObject | None = None,
        **options: UUID | str | None,
    ) -> UUID:
        """One job in a transaction of its own, committed."""
        tx = self.db.begin()
        try:
            job_id = await self.in_transaction(tx, tenant_id).enqueue(
                kind,
                payload or {},
                **options,  # type: ignore[arg-type]
            )
            await tx.commit()
        finally:
            await tx.rollback()
        return job_id

    def stored(self, job_id: UUID) -> StoredJob | None:
        row: StoredJob | None = self.db.committed(JOBS).get(job_id)
        return row

    def wakes(self) -> list[Wake]:
        return self.db.log(WAKES)
