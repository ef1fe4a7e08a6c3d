"""JobScheduler: SqlJobScheduler on PostgreSQL and FakeJobScheduler in memory, one behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import pytest

from impextech.jobs.adapters.queue import UnknownJobKind
from impextech.jobs.domain.model import JobKind, JobState
from impextech.jobs.service.ports import JobRequest, Started
from tests.contracts.rigs import KIND, OTHER_KIND, SIDES, JobsRig, Party, jobs_rig
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio

MINUTE = timedelta(minutes=1)


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[JobsRig]:
    async with jobs_rig(request, request.param) as made:
        yield made


async def listed(rig: JobsRig, party: Party) -> list[UUID]:
    async with rig.uow(party.tenant_id) as uow:
        page = await uow.jobs.list(None, None, 100)
    return sorted(j.id for j in page.items)


async def test_a_pending_job_with_the_same_kind_and_key_is_joined(rig: JobsRig) -> None:
    first = await rig.enqueue(rig.acme, dedup_key="product:1")
    rig.clock.advance(MINUTE)
    assert await rig.enqueue(rig.acme, dedup_key="product:1") == first
    other_kind = await rig.enqueue(rig.acme, OTHER_KIND, dedup_key="product:1")
    other_key = await rig.enqueue(rig.acme, dedup_key="product:2")
    no_key = [await rig.enqueue(rig.acme), await rig.enqueue(rig.acme)]
    elsewhere = await rig.enqueue(rig.globex, dedup_key="product:1")
    assert len({first, other_kind, other_key, *no_key, elsewhere}) == 6
    assert await listed(rig, rig.acme) == sorted([first, other_kind, other_key, *no_key])
    async with rig.uow(rig.acme.tenant_id) as uow:
        joined = await uow.jobs.get(first)
    assert joined is not None
    assert (joined.created_at, joined.updated_at) == (T0, T0 + MINUTE)


async def test_a_started_job_is_not_joined(rig: JobsRig) -> None:
    first = await rig.enqueue(rig.acme, dedup_key="product:1")
    await rig.ledger(rig.acme.tenant_id).start(first, rig.clock.now())
    second = await rig.enqueue(rig.acme, dedup_key="product:1")
    assert second != first
    assert await rig.enqueue(rig.acme, dedup_key="product:1") == second


async def test_a_batch_answers_in_request_order_and_twins_join_the_first(rig: JobsRig) -> None:
    pending = await rig.enqueue(rig.acme, dedup_key="b")
    requests = [
        JobRequest({"n": 1}, dedup_key="a"),
        JobRequest({"n": 2}, dedup_key="b"),
        JobRequest({"n": 3}),
        JobRequest({"n": 4}, dedup_key="a"),
        JobRequest({"n": 5}, lock_key="x"),
    ]
    async with rig.transaction(rig.acme.tenant_id) as tx:
        ids = await tx.scheduler.enqueue_many(KIND, requests, created_by=rig.acme.admin)
        await tx.commit()
    assert ids[1] == pending
    assert ids[3] == ids[0]
    assert len({ids[0], ids[1], ids[2], ids[4]}) == 4
    assert await listed(rig, rig.acme) == sorted({*ids})
    ledger = rig.ledger(rig.acme.tenant_id)
    started = [await ledger.start(ids[n], rig.clock.now()) for n in (0, 1, 2, 4)]
    assert started == [
        Started(KIND.name, 1, {"n": 1}),
        Started(KIND.name, 1, {"n": 1}),  # the pending job keeps its own payload
        Started(KIND.name, 1, {"n": 3}),
        Started(KIND.name, 1, {"n": 5}),
    ]
    async with rig.uow(rig.acme.tenant_id) as uow:
        first = await uow.jobs.get(ids[0])
    assert first is not None
    assert first.created_by == rig.acme.admin


async def test_an_empty_batch_enqueues_nothing(rig: JobsRig) -> None:
    async with rig.transaction(rig.acme.tenant_id) as tx:
        assert await tx.scheduler.enqueue_many(KIND, []) == []
        await tx.commit()
    assert await listed(rig, rig.acme) == []


async def test_a_kind_the_process_does_not_know_is_refused(rig: JobsRig) -> None:
    unknown = JobKind("contract.unknown")
    changed = JobKind(KIND.name, max_attempts=KIND.max_attempts + 1)
    async with rig.transaction(rig.acme.tenant_id) as tx:
        with pytest.raises(UnknownJobKind):
            await tx.scheduler.enqueue(unknown, {})
        with pytest.raises(UnknownJobKind):
            await tx.scheduler.enqueue_many(changed, [JobRequest({})])
        await tx.commit()
    assert await listed(rig, rig.acme) == []


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_enqueue_of_a_key_waits_for_the_first_transaction(
    rig: JobsRig, first_commits: bool
) -> None:
    async with rig.transaction(rig.acme.tenant_id) as second:
        async with rig.transaction(rig.acme.tenant_id) as first:
            mine = await first.scheduler.enqueue(KIND, {}, dedup_key="k")
            waiting = asyncio.create_task(second.scheduler.enqueue(KIND, {}, dedup_key="k"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            if first_commits:
                await first.commit()
        theirs = await asyncio.wait_for(waiting, 5)
        await second.commit()
    assert (theirs == mine) is first_commits
    assert await listed(rig, rig.acme) == [theirs]
    async with rig.uow(rig.acme.tenant_id) as uow:
        job = await uow.jobs.get(theirs)
    assert job is not None
    assert job.state is JobState.QUEUED
