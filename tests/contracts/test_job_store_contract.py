"""JobStore (with the worker's ledger that moves jobs along): SQL and in-memory, one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest

from impextech.jobs.domain.model import Job, JobState
from impextech.jobs.service.ports import JobCounts, Started
from tests.contracts.rigs import KIND, OTHER_KIND, SIDES, JobsRig, Party, jobs_rig
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio

MINUTE = timedelta(minutes=1)


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[JobsRig]:
    async with jobs_rig(request, request.param) as made:
        yield made


async def read(rig: JobsRig, party: Party, job_id: UUID) -> Job | None:
    async with rig.uow(party.tenant_id) as uow:
        return await uow.jobs.get(job_id)


async def dead(rig: JobsRig, party: Party) -> UUID:
    """A job that ran once and was given up on, a minute later."""
    job_id = await rig.enqueue(party)
    ledger = rig.ledger(party.tenant_id)
    assert await ledger.start(job_id, rig.clock.now()) == Started(KIND.name, 1, {"n": 1})
    await ledger.bury(job_id, "ValueError: broken", rig.clock.advance(MINUTE))
    return job_id


async def test_an_enqueued_job_reads_back_exactly(rig: JobsRig) -> None:
    job_id = await rig.enqueue(rig.acme, OTHER_KIND)
    assert await read(rig, rig.acme, job_id) == Job(
        id=job_id,
        tenant_id=rig.acme.tenant_id,
        kind="contract.export",
        queue="bulk",
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=2,
        progress_done=None,
        progress_total=None,
        result=None,
        last_error=None,
        created_by=rig.acme.seller,
        created_at=T0,
        updated_at=T0,
        started_at=None,
        finished_at=None,
        next_attempt_at=None,
    )


async def test_a_job_exists_for_others_only_once_its_transaction_commits(rig: JobsRig) -> None:
    async with rig.transaction(rig.acme.tenant_id) as tx:
        pending = await tx.scheduler.enqueue(KIND, {}, created_by=rig.acme.seller)
        assert await read(rig, rig.acme, pending) is None
    assert await read(rig, rig.acme, pending) is None  # left without commit: never existed
    async with rig.transaction(rig.acme.tenant_id) as tx:
        job_id = await tx.scheduler.enqueue(KIND, {}, created_by=rig.acme.seller)
        await tx.commit()
    assert (await read(rig, rig.acme, job_id)) is not None


async def test_another_tenant_neither_sees_nor_touches_a_job(rig: JobsRig) -> None:
    job_id = await dead(rig, rig.acme)
    before = await read(rig, rig.acme, job_id)
    async with rig.uow(rig.globex.tenant_id) as uow:
        assert await uow.jobs.get(job_id) is None
        assert await uow.jobs.get_for_update(job_id) is None
        assert (await uow.jobs.list(None, None, 10)).items == []
        assert await uow.jobs.counts() == JobCounts(dict.fromkeys(JobState, 0), None)
        assert await uow.jobs.requeue_dead(job_id, rig.clock.now()) is None
        await uow.jobs.discard(job_id, rig.clock.now())
        await uow.commit()
    globex_ledger = rig.ledger(rig.globex.tenant_id)
    assert await globex_ledger.start(job_id, rig.clock.now()) is None
    assert await read(rig, rig.acme, job_id) == before


async def test_the_list_is_newest_first_filtered_and_paged(rig: JobsRig) -> None:
    ids = []
    for _ in range(5):
        ids.append(await rig.enqueue(rig.acme))
        rig.clock.advance(MINUTE)
    await rig.enqueue(rig.globex)
    ledger = rig.ledger(rig.acme.tenant_id)
    await ledger.start(ids[1], rig.clock.now())
    async with rig.uow(rig.acme.tenant_id) as uow:
        first = await uow.jobs.list(None, None, 2)
        assert [j.id for j in first.items] == [ids[4], ids[3]]
        assert first.next_position == (T0 + 3 * MINUTE, ids[3])
        second = await uow.jobs.list(None, first.next_position, 2)
        assert [j.id for j in second.items] == [ids[2], ids[1]]
        third = await uow.jobs.list(None, second.next_position, 2)
        assert ([j.id for j in third.items], third.next_position) == ([ids[0]], None)
        queued = await uow.jobs.list(JobState.QUEUED, None, 10)
        assert ([j.id for j in queued.items], queued.next_position) == (
            [ids[4], ids[3], ids[2], ids[0]],
            None,
        )
        exact = await uow.jobs.list(JobState.RUNNING, None, 1)
        assert ([j.id for j in exact.items], exact.next_position) == ([ids[1]], None)


async def test_counts_by_state_and_the_oldest_job_still_waiting(rig: JobsRig) -> None:
    running = await rig.enqueue(rig.acme)  # at T0, the oldest, but it runs
    rig.clock.advance(MINUTE)
    failed = await rig.enqueue(rig.acme)  # T0 + 1 min: waits for its next attempt
    rig.clock.advance(MINUTE)
    await rig.enqueue(rig.acme)
    await dead(rig, rig.acme)
    await rig.enqueue(rig.globex)
    ledger = rig.ledger(rig.acme.tenant_id)
    now = rig.clock.now()
    await ledger.start(running, now)
    await ledger.start(failed, now)
    await ledger.fail(failed, "ConnectionError", now + MINUTE, now)
    async with rig.uow(rig.acme.tenant_id) as uow:
        counts = await uow.jobs.counts()
    expected = dict.fromkeys(JobState, 0) | {
        JobState.QUEUED: 1,
        JobState.RUNNING: 1,
        JobState.FAILED: 1,
        JobState.DEAD: 1,
    }
    assert counts == JobCounts(expected, T0 + MINUTE)


async def test_only_a_dead_job_is_requeued_with_fresh_attempts(rig: JobsRig) -> None:
    queued = await rig.enqueue(rig.acme)
    queued_before = await read(rig, rig.acme, queued)
    job_id = await dead(rig, rig.acme)
    buried = await read(rig, rig.acme, job_id)
    assert buried is not None
    assert (buried.state, buried.attempts, buried.last_error) == (
        JobState.DEAD,
        1,
        "ValueError: broken",
    )
    assert buried.finished_at == T0 + MINUTE
    later = rig.clock.advance(MINUTE)
    async with rig.uow(rig.acme.tenant_id) as uow:
        assert await uow.jobs.requeue_dead(queued, later) is None
        queue_job_id = await uow.jobs.requeue_dead(job_id, later)
        assert isinstance(queue_job_id, int)
        assert await uow.jobs.requeue_dead(job_id, later) is None  # no longer dead
        await uow.commit()
    assert await read(rig, rig.acme, job_id) == replace(
        buried,
        state=JobState.QUEUED,
        attempts=0,
        last_error=None,
        finished_at=None,
        next_attempt_at=None,
        updated_at=later,
    )
    assert await read(rig, rig.acme, queued) == queued_before


async def test_only_a_dead_job_is_discarded(rig: JobsRig) -> None:
    queued = await rig.enqueue(rig.acme)
    job_id = await dead(rig, rig.acme)
    queued_before = await read(rig, rig.acme, queued)
    later = rig.clock.advance(MINUTE)
    async with rig.uow(rig.acme.tenant_id) as uow:
        await uow.jobs.discard(queued, later)
        await uow.jobs.discard(job_id, later)
        await uow.commit()
    assert await read(rig, rig.acme, queued) == queued_before
    discarded = await read(rig, rig.acme, job_id)
    assert discarded is not None
    assert (discarded.state, discarded.updated_at, discarded.finished_at) == (
        JobState.DISCARDED,
        later,
        T0 + MINUTE,
    )


async def test_a_job_read_for_update_makes_a_second_one_wait(rig: JobsRig) -> None:
    job_id = await dead(rig, rig.acme)
    later = rig.clock.advance(MINUTE)
    async with rig.uow(rig.acme.tenant_id) as second:
        async with rig.uow(rig.acme.tenant_id) as first:
            assert (await first.jobs.get_for_update(job_id)) is not None
            waiting = asyncio.create_task(second.jobs.get_for_update(job_id))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await first.jobs.discard(job_id, later)
            await first.commit()
        seen = await asyncio.wait_for(waiting, 5)
        assert seen is not None
        assert seen.state is JobState.DISCARDED


async def test_the_ledger_moves_a_job_through_its_life(rig: JobsRig) -> None:
    job_id = await rig.enqueue(rig.acme)
    ledger = rig.ledger(rig.acme.tenant_id)
    t1, t2, t3, t4 = (T0 + n * MINUTE for n in (1, 2, 3, 4))
    assert await ledger.start(job_id, t1) == Started(KIND.name, 1, {"n": 1})
    await ledger.progress(job_id, 3, 10, t1)
    await ledger.progress(job_id, 5, None, t1)
    await ledger.fail(job_id, "ConnectionError: down", t3, t2)
    failed = await read(rig, rig.acme, job_id)
    assert failed is not None
    assert (failed.state, failed.last_error, failed.next_attempt_at, failed.updated_at) == (
        JobState.FAILED,
        "ConnectionError: down",
        t3,
        t2,
    )
    await ledger.progress(job_id, 9, None, t2)  # not running: ignored
    assert await ledger.start(job_id, t3) == Started(KIND.name, 2, {"n": 1})
    await ledger.release(job_id, t4, "breaker open", t3, refund=True)
    released = await read(rig, rig.acme, job_id)
    assert released is not None
    assert (released.state, released.attempts, released.last_error) == (
        JobState.QUEUED,
        1,
        "breaker open",
    )
    assert await ledger.start(job_id, t4) == Started(KIND.name, 2, {"n": 1})
    await ledger.succeed(job_id, {"rows": 7}, t4)
    done = await read(rig, rig.acme, job_id)
    assert done == Job(
        id=job_id,
        tenant_id=rig.acme.tenant_id,
        kind=KIND.name,
        queue="default",
        state=JobState.SUCCEEDED,
        attempts=2,
        max_attempts=KIND.max_attempts,
        progress_done=5,
        progress_total=10,
        result={"rows": 7},
        last_error=None,
        created_by=rig.acme.seller,
        created_at=T0,
        updated_at=t4,
        started_at=t1,
        finished_at=t4,
        next_attempt_at=None,
    )
    assert await ledger.start(job_id, t4) is None  # finished jobs never run again
    await ledger.bury(job_id, "late", t4)
    assert await read(rig, rig.acme, job_id) == done
