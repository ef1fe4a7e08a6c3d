"""What the job use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from impextech.jobs.domain.model import Job, JobKind, JobState, JsonObject
from impextech.kernel.domain.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class JobPage:
    items: Sequence[Job]
    next_position: tuple[datetime, UUID] | None


@dataclass(frozen=True, slots=True)
class JobCounts:
    """A tenant's jobs by state, and the age of its oldest job still waiting to run."""

    by_state: dict[JobState, int]
    oldest_queued_at: datetime | None


@dataclass(frozen=True, slots=True)
class Started:
    """A job that a worker has just taken: what its handler needs."""

    kind: str
    attempts: int
    payload: JsonObject


class JobStore(Protocol):
    """A tenant's jobs; every method runs inside that tenant's transaction."""

    async def get(self, job_id: UUID) -> Job | None: ...
    async def get_for_update(self, job_id: UUID) -> Job | None: ...
    async def list(
        self, state: JobState | None, after: tuple[datetime, UUID] | None, limit: int
    ) -> JobPage: ...
    async def counts(self) -> JobCounts: ...
    async def requeue_dead(self, job_id: UUID, now: datetime) -> int | None:
        """Give a dead job a fresh set of attempts; the queue job id to wake, if it has one."""
        ...

    async def discard(self, job_id: UUID, now: datetime) -> None: ...


class QueueControl(Protocol):
    """The job library's side of an operator's decision, in the same transaction."""

    async def wake_dead(self, queue_job_id: int, at: datetime) -> None:
        """Put a failed queue job back in its queue, due at ``at``."""
        ...


class JobsUnitOfWork(UnitOfWork, Protocol):
    @property
    def jobs(self) -> JobStore: ...
    @property
    def queue(self) -> QueueControl: ...


class JobsUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> JobsUnitOfWork: ...


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to enqueue among many of the same kind."""

    payload: JsonObject
    dedup_key: str | None = None
    lock_key: str | None = None


class JobScheduler(Protocol):
    """Enqueues jobs in the caller's transaction: they exist exactly when the change commits."""

    async def enqueue(
        self,
        kind: JobKind,
        payload: JsonObject,
        *,
        created_by: UUID | None = None,
        dedup_key: str | None = None,
        lock_key: str | None = None,
    ) -> UUID: ...

    async def enqueue_many(
        self, kind: JobKind, requests: Sequence[JobRequest], *, created_by: UUID | None = None
    ) -> list[UUID]:
        """Like ``enqueue`` for each request, in three statements whatever their number."""
        ...


class Progress(Protocol):
    def __call__(self, done: int, total: int | None = None) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets: whose job it is, its input, and a way to report progress."""

    tenant_id: UUID
    job_id: UUID
    kind: str
    attempt: int
    payload: JsonObject
    progress: Progress


Handler = Callable[[JobContext], Awaitable[JsonObject | None]]
