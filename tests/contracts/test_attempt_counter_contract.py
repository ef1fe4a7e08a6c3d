"""AttemptCounter: SqlAttemptCounter on PostgreSQL and FakeAttemptCounter in memory, one
behaviour (the rules are in docs/sign-in-limits.md; time is the caller's ``now``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from impextech.identity.service.ports import Attempt, Backoff, Budget, Hold
from tests.contracts.rigs import SIDES, IdentityRig, identity_rig
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio


class Counter:
    """Each call in a committed transaction of its own, at a time the test moves."""

    def __init__(self, rig: IdentityRig) -> None:
        self.rig = rig
        self.now = T0

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    async def take(self, *attempts: Attempt, tenant: UUID | None = None) -> int | None:
        async with self.rig.uow(tenant or self.rig.acme.id) as uow:
            wait = await uow.attempts.take(attempts, self.now)
            await uow.commit()
        return wait

    async def give_back(self, at: datetime, *attempts: Attempt) -> None:
        async with self.rig.uow(self.rig.acme.id) as uow:
            await uow.attempts.give_back(Hold(attempts, at))
            await uow.commit()


@pytest.fixture(params=SIDES)
async def counter(request: pytest.FixtureRequest) -> AsyncIterator[Counter]:
    async with identity_rig(request, request.param) as rig:
        yield Counter(rig)


async def test_a_budget_allows_its_limit_per_window_opened_by_the_first_attempt(
    counter: Counter,
) -> None:
    a = Budget("login:a", 3, 600)
    assert [await counter.take(a) for _ in range(4)] == [None, None, None, 600]
    counter.advance(100.2)
    assert await counter.take(a) == 500  # 499.8 s left, rounded up
    counter.advance(499.3)
    assert await counter.take(a) == 1  # never less than a second
    counter.advance(0.5)  # the window opened at T0 is over
    assert [await counter.take(a) for _ in range(4)] == [None, None, None, 600]


async def test_a_refusal_counts_nothing_and_answers_the_longest_wait(counter: Counter) -> None:
    a, b, c = Budget("a", 1, 600), Budget("b", 2, 60), Budget("c", 1, 60)
    assert await counter.take(a) is None
    counter.advance(10)
    assert await counter.take(c, a, b) == 590
    assert [await counter.take(b) for _ in range(3)] == [None, None, 60]
    assert await counter.take(a, b) == 590
    assert await counter.take(c) is None
    assert await counter.take(c) == 60


async def test_a_backoff_lets_the_free_attempts_go_then_doubles_the_wait(counter: Counter) -> None:
    k = Backoff("login:k", free=2, base_seconds=10, max_seconds=40, memory_seconds=3600)
    assert [await counter.take(k) for _ in range(3)] == [None, None, 10]
    counter.advance(10)
    assert [await counter.take(k) for _ in range(2)] == [None, 20]
    counter.advance(19)
    assert await counter.take(k) == 1
    counter.advance(1)
    assert [await counter.take(k) for _ in range(2)] == [None, 40]
    counter.advance(40)
    assert [await counter.take(k) for _ in range(2)] == [None, 40]  # at most max_seconds
    counter.advance(3600)  # an hour after the latest counted attempt: forgotten
    assert [await counter.take(k) for _ in range(3)] == [None, None, 10]


async def test_a_free_backoff_attempt_goes_even_if_a_later_clock_counted_first(
    counter: Counter,
) -> None:
    # Two sign-ins at once: the one that read the clock later may count first. With no delay
    # owed, the earlier one must not be told to wait for a moment that is already past.
    k = Backoff("login:k", free=3, base_seconds=10, max_seconds=40, memory_seconds=3600)
    counter.advance(1)
    assert await counter.take(k) is None
    counter.advance(-1)
    assert await counter.take(k) is None
    assert await counter.take(k) is None
    assert await counter.take(k) == 10  # the free ones are spent: the delay is owed again


async def test_no_wait_is_longer_than_what_the_counter_remembers(counter: Counter) -> None:
    k = Backoff("k", free=1, base_seconds=100, max_seconds=900, memory_seconds=60)
    assert [await counter.take(k) for _ in range(2)] == [None, 60]
    counter.advance(60)
    assert [await counter.take(k) for _ in range(2)] == [None, 60]


async def test_a_budget_hit_given_back_in_its_window_is_uncounted(counter: Counter) -> None:
    a = Budget("a", 2, 600)
    assert await counter.take(a) is None
    counter.advance(1)
    assert [await counter.take(a) for _ in range(2)] == [None, 599]
    await counter.give_back(T0, a)
    assert [await counter.take(a) for _ in range(2)] == [None, 599]


async def test_giving_back_the_last_hit_forgets_the_window(counter: Counter) -> None:
    a = Budget("a", 1, 600)
    assert await counter.take(a) is None
    await counter.give_back(T0, a)
    counter.advance(300)
    assert [await counter.take(a) for _ in range(2)] == [None, 600]  # a window from now


async def test_a_hit_of_a_window_that_is_over_is_not_given_back(counter: Counter) -> None:
    a = Budget("a", 1, 600)
    assert await counter.take(a) is None
    counter.advance(600)
    assert await counter.take(a) is None
    await counter.give_back(T0, a)
    assert await counter.take(a) == 600
    await counter.give_back(T0 + timedelta(seconds=1), Budget("unknown", 1, 600))


async def test_a_backoff_hit_given_back_shortens_the_next_wait(counter: Counter) -> None:
    k = Backoff("k", free=1, base_seconds=10, max_seconds=900, memory_seconds=3600)
    assert [await counter.take(k) for _ in range(2)] == [None, 10]
    await counter.give_back(T0, k)
    assert [await counter.take(k) for _ in range(2)] == [None, 10]
    counter.advance(10)
    assert await counter.take(k) is None  # two hits: the next would wait 20
    await counter.give_back(T0, k)
    assert await counter.take(k) == 10


async def test_an_attempt_counts_only_when_its_transaction_commits(counter: Counter) -> None:
    a = Budget("a", 1, 600)
    async with counter.rig.uow(counter.rig.acme.id) as uow:
        assert await uow.attempts.take([a], T0) is None
        assert await uow.attempts.take([a], T0) == 600  # its own count
    assert [await counter.take(a) for _ in range(2)] == [None, 600]


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_taker_of_one_key_waits_for_the_first(
    counter: Counter, first_commits: bool
) -> None:
    a = Budget("a", 1, 600)
    rig = counter.rig
    async with rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            assert await first.attempts.take([a], T0) is None
            waiting = asyncio.create_task(second.attempts.take([a], T0))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            if first_commits:
                await first.commit()
        assert await asyncio.wait_for(waiting, 5) == (600 if first_commits else None)
        await second.commit()


async def test_keys_are_shared_by_every_tenant(counter: Counter) -> None:
    a = Budget("address:198.51.100.7", 1, 600)
    assert await counter.take(a, tenant=counter.rig.acme.id) is None
    assert await counter.take(a, tenant=counter.rig.globex.id) == 600


async def test_a_window_longer_than_the_counters_memory_is_refused(counter: Counter) -> None:
    fine = Budget("fine", 1, 600)
    for too_long in (Budget("b", 1, 86_401), Backoff("k", 1, 1, 1, 86_401)):
        with pytest.raises(ValueError, match="pruned"):
            await counter.take(fine, too_long)
    assert await counter.take(Budget("day", 1, 86_400), fine) is None
    assert await counter.take(fine) == 600


@pytest.mark.parametrize(
    ("email", "folded"),
    [
        ("Ada@Acme.Example", "ada@acme.example"),
        ("  ADA@acme.example ", "  ada@acme.example "),
        ("ADMİN@acme.example", "admin@acme.example"),
        ("ΣΟΦΙΑΣ@acme.example", "σοφιασ@acme.example"),
        ("STRAẞE@acme.example", "straße@acme.example"),
    ],
)
async def test_fold_lowers_as_the_account_look_up_does(
    counter: Counter, email: str, folded: str
) -> None:
    async with counter.rig.uow(counter.rig.acme.id) as uow:
        assert await uow.attempts.fold(email) == folded
