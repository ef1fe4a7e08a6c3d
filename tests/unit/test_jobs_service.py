"""JobsService, retry_dead and discard_dead over in-memory jobs: visibility, admins, dead letters.

The HTTP answers and the real queue's side are tested in tests/integration/test_jobs_api.py and
test_jobs_runtime.py; here each rule is checked with exact state afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest

from impextech.jobs.domain.model import JobKind, JobNotDead, JobNotFound, JobState
from impextech.jobs.service.jobs import JobsService, JobSummary, discard_dead, retry_dead
from impextech.kernel.domain.errors import Forbidden
from impextech.kernel.domain.principal import Principal, Role
from tests.fakes.clock import T0, ManualClock
from tests.fakes.jobs import FakeJobs, StoredJob, Wake

pytestmark = pytest.mark.anyio

ACME, GLOBEX = uuid.uuid4(), uuid.uuid4()
KIND = JobKind("test.report", max_attempts=3)
MINUTE = timedelta(minutes=1)


def who(role: Role, tenant: UUID = ACME) -> Principal:
    return Principal(tenant, uuid.uuid4(), role, uuid.uuid4())


SELLER, OTHER_SELLER, ADMIN = who(Role.SELLER), who(Role.SELLER), who(Role.ADMIN)
GLOBEX_ADMIN = who(Role.ADMIN, GLOBEX)


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.jobs = FakeJobs(self.clock, [KIND])
        self.service = JobsService(self.jobs.uow, self.clock)

    async def job(self, by: UUID | None = SELLER.user_id, tenant: UUID = ACME) -> UUID:
        job_id = await self.jobs.enqueue(tenant, KIND, {"n": 1}, created_by=by)
        self.clock.advance(MINUTE)
        return job_id

    async def dead(self, tenant: UUID = ACME) -> UUID:
        job_id = await self.job(tenant=tenant)
        ledger = self.jobs.ledger(tenant)
        await ledger.start(job_id, self.clock.now())
        await ledger.bury(job_id, "ValueError: broken", self.clock.now())
        self.clock.advance(MINUTE)
        return job_id

    def rows(self, *job_ids: UUID) -> list[StoredJob | None]:
        return [self.jobs.stored(job_id) for job_id in job_ids]


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def test_the_creator_and_admins_see_a_job_and_no_one_else_does(rig: Rig) -> None:
    job_id = await rig.job()
    stored = rig.jobs.stored(job_id)
    assert stored is not None
    assert await rig.service.get(SELLER, job_id) == stored.job
    assert await rig.service.get(ADMIN, job_id) == stored.job
    for stranger in (OTHER_SELLER, who(Role.SHOPPER), GLOBEX_ADMIN):
        with pytest.raises(JobNotFound):  # 404, never 403: an id reveals nothing
            await rig.service.get(stranger, job_id)
    with pytest.raises(JobNotFound):
        await rig.service.get(ADMIN, uuid.uuid4())


async def test_a_job_no_one_started_is_seen_by_admins_only(rig: Rig) -> None:
    job_id = await rig.job(by=None)
    assert (await rig.service.get(ADMIN, job_id)).id == job_id
    with pytest.raises(JobNotFound):
        await rig.service.get(SELLER, job_id)


async def test_only_admins_list_summarise_retry_or_discard_and_nothing_changes(
    rig: Rig,
) -> None:
    dead = await rig.dead()
    before = rig.rows(dead)
    for viewer in (SELLER, who(Role.SHOPPER)):
        with pytest.raises(Forbidden):
            await rig.service.list(viewer, None, None, 10)
        with pytest.raises(Forbidden):
            await rig.service.summary(viewer)
        with pytest.raises(Forbidden):
            await rig.service.retry(viewer, dead)
        with pytest.raises(Forbidden):
            await rig.service.discard(viewer, dead)
    assert rig.rows(dead) == before
    assert rig.jobs.wakes() == []


async def test_an_admin_lists_the_tenants_jobs_by_state(rig: Rig) -> None:
    first, dead, last = await rig.job(), await rig.dead(), await rig.job(by=None)
    await rig.job(tenant=GLOBEX)
    page = await rig.service.list(ADMIN, None, None, 2)
    assert [j.id for j in page.items] == [last, dead]
    rest = await rig.service.list(ADMIN, None, page.next_position, 2)
    assert ([j.id for j in rest.items], rest.next_position) == ([first], None)
    dead_only = await rig.service.list(ADMIN, JobState.DEAD, None, 10)
    assert [j.id for j in dead_only.items] == [dead]


async def test_the_summary_counts_states_and_ages_the_oldest_waiting_job_by_the_clock(
    rig: Rig,
) -> None:
    await rig.dead()  # created at T0, finished: not waiting
    await rig.job()  # created at T0 + 2 min
    await rig.job()
    await rig.job(tenant=GLOBEX)
    rig.clock.current = T0 + 10 * MINUTE
    summary = await rig.service.summary(ADMIN)
    by_state = dict.fromkeys(JobState, 0) | {JobState.QUEUED: 2, JobState.DEAD: 1}
    assert summary == JobSummary(by_state, 8 * MINUTE)
    rig.clock.current = T0  # a clock behind the row's timestamp: never a negative wait
    assert (await rig.service.summary(ADMIN)).oldest_waiting == timedelta(0)


async def test_the_summary_of_a_tenant_with_nothing_waiting(rig: Rig) -> None:
    await rig.dead()
    assert await rig.service.summary(ADMIN) == JobSummary(
        dict.fromkeys(JobState, 0) | {JobState.DEAD: 1}, None
    )


async def test_a_retried_dead_job_gets_fresh_attempts_and_its_queue_entry_wakes_now(
    rig: Rig,
) -> None:
    job_id = await rig.dead()
    buried = rig.jobs.stored(job_id)
    assert buried is not None
    now = rig.clock.now()
    retried = await rig.service.retry(ADMIN, job_id)
    assert retried == replace(
        buried.job,
        state=JobState.QUEUED,
        attempts=0,
        last_error=None,
        finished_at=None,
        next_attempt_at=None,
        updated_at=now,
    )
    assert rig.jobs.wakes() == [Wake(buried.queue_job_id, now)]


async def test_a_discarded_dead_job_keeps_its_history(rig: Rig) -> None:
    job_id = await rig.dead()
    buried = rig.jobs.stored(job_id)
    assert buried is not None
    discarded = await rig.service.discard(ADMIN, job_id)
    assert discarded == replace(buried.job, state=JobState.DISCARDED, updated_at=rig.clock.now())
    assert rig.jobs.wakes() == []


async def test_a_job_that_is_not_dead_is_neither_retried_nor_discarded(rig: Rig) -> None:
    queued = await rig.job()
    running = await rig.job()
    await rig.jobs.ledger(ACME).start(running, rig.clock.now())
    before = rig.rows(queued, running)
    for job_id, state in ((queued, "queued"), (running, "running")):
        with pytest.raises(JobNotDead, match=f"is {state}"):
            await rig.service.retry(ADMIN, job_id)
        with pytest.raises(JobNotDead):
            await rig.service.discard(ADMIN, job_id)
    assert rig.rows(queued, running) == before
    assert rig.jobs.wakes() == []


async def test_another_tenants_dead_job_is_not_found_and_stays_dead(rig: Rig) -> None:
    job_id = await rig.dead(tenant=GLOBEX)
    before = rig.rows(job_id)
    with pytest.raises(JobNotFound):
        await rig.service.retry(ADMIN, job_id)
    with pytest.raises(JobNotFound):
        await discard_dead(rig.jobs.uow, rig.clock, ACME, job_id)
    assert rig.rows(job_id) == before


async def test_a_retry_the_queue_refuses_leaves_the_job_dead(rig: Rig) -> None:
    job_id = await rig.dead()
    before = rig.rows(job_id)
    stored = before[0]
    assert stored is not None
    rig.jobs.unreleased.add(stored.queue_job_id)
    with pytest.raises(JobNotDead, match="not released"):
        await retry_dead(rig.jobs.uow, rig.clock, ACME, job_id)
    assert rig.rows(job_id) == before  # the job row's change rolled back with the queue's
    rig.jobs.unreleased.clear()
    assert (await retry_dead(rig.jobs.uow, rig.clock, ACME, job_id)).state is JobState.QUEUED
