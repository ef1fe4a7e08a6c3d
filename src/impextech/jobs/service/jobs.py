"""Following jobs, and an operator's decisions about dead letters.

A job is visible to whoever started it and to the marketplace's admins; to anyone else it does
not exist (404, never 403, so ids reveal nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from impextech.jobs.domain.model import Job, JobNotDead, JobNotFound, JobState
from impextech.jobs.service.ports import JobPage, JobsUnitOfWorkFactory
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.principal import Principal


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A tenant's jobs by state, and how long its oldest job still waiting to run has waited."""

    by_state: dict[JobState, int]
    oldest_waiting: timedelta | None


def _visible(job: Job, viewer: Principal) -> bool:
    return viewer.is_admin or (job.created_by is not None and job.created_by == viewer.user_id)


class JobsService:
    def __init__(self, uow: JobsUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def get(self, viewer: Principal, job_id: UUID) -> Job:
        async with self._uow(viewer.tenant_id) as uow:
            job = await uow.jobs.get(job_id)
        if job is None or not _visible(job, viewer):
            raise JobNotFound()
        return job

    async def list(
        self,
        viewer: Principal,
        state: JobState | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> JobPage:
        viewer.require_admin()
        async with self._uow(viewer.tenant_id) as uow:
            return await uow.jobs.list(state, after, limit)

    async def summary(self, viewer: Principal) -> JobSummary:
        viewer.require_admin()
        async with self._uow(viewer.tenant_id) as uow:
            counts = await uow.jobs.counts()
        waiting = None
        if counts.oldest_queued_at is not None:
            # Never negative: the clock and the row's timestamp may disagree by a moment.
            waiting = max(self._clock.now() - counts.oldest_queued_at, timedelta(0))
        return JobSummary(counts.by_state, waiting)

    async def retry(self, viewer: Principal, job_id: UUID) -> Job:
        """A dead job gets a fresh set of attempts and runs again as soon as a worker is free."""
        viewer.require_admin()
        return await retry_dead(self._uow, self._clock, viewer.tenant_id, job_id)

    async def discard(self, viewer: Principal, job_id: UUID) -> Job:
        viewer.require_admin()
        return await discard_dead(self._uow, self._clock, viewer.tenant_id, job_id)


async def retry_dead(
    uow_factory: JobsUnitOfWorkFactory,
    clock: Clock,
    tenant_id: UUID,
    job_id: UUID,
) -> Job:
    async with uow_factory(tenant_id) as uow:
        job = await uow.jobs.get_for_update(job_id)
        if job is None:
            raise JobNotFound()
        if job.state is not JobState.DEAD:
            raise JobNotDead(f"job {job_id} is {job.state.value}")
        now = clock.now()
        queue_job_id = await uow.jobs.requeue_dead(job_id, now)
        if queue_job_id is not None:
            # In the same transaction: the job row and its queue entry change together.
            await uow.queue.wake_dead(queue_job_id, now)
        await uow.commit()
    return await _reload(uow_factory, tenant_id, job_id)


async def discard_dead(
    uow_factory: JobsUnitOfWorkFactory, clock: Clock, tenant_id: UUID, job_id: UUID
) -> Job:
    async with uow_factory(tenant_id) as uow:
        job = await uow.jobs.get_for_update(job_id)
        if job is None:
            raise JobNotFound()
        if job.state is not JobState.DEAD:
            raise JobNotDead(f"job {job_id} is {job.state.value}")
        await uow.jobs.discard(job_id, clock.now())
        await uow.commit()
    return await _reload(uow_factory, tenant_id, job_id)


async def _reload(uow_factory: JobsUnitOfWorkFactory, tenant_id: UUID, job_id: UUID) -> Job:
    async with uow_factory(tenant_id) as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None
    return job
