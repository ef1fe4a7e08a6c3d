"""The attempt counter over the real table, on a clock the test moves (nobody sleeps)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import anyio
import psycopg
import pytest

from impextech.identity.adapters.rate_limit import SqlAttemptCounter, attempt_key
from impextech.identity.service.ports import Attempt, Backoff, Budget, Hold
from impextech.kernel.db import Database
from impextech.platform.database import Conninfos
from tests.support.sign_in import SECRET, ManualClock

pytestmark = pytest.mark.anyio

KEY = attempt_key(SECRET)


class Counter:
    """One transaction per call, as the use cases do."""

    def __init__(self, database: Database, clock: ManualClock) -> None:
        self.database = database
        self.clock = clock

    async def take(self, *attempts: Attempt) -> int | None:
        async with self.database.transaction(None) as conn:
            return await SqlAttemptCounter(conn, KEY).take(attempts, self.clock.now())

    async def give_back(self, hold: Hold) -> None:
        async with self.database.transaction(None) as conn:
            await SqlAttemptCounter(conn, KEY).give_back(hold)


@pytest.fixture
async def counter(clean_db: Conninfos) -> AsyncIterator[Counter]:
    database = Database.connect(clean_db.app, size=4)
    yield Counter(database, ManualClock())
    await database.dispose()


def _rows(owner: str) -> dict[str, int]:
    with psycopg.connect(owner) as conn:
        return dict(conn.execute("SELECT key, hits FROM rate_limit_counters").fetchall())


def _digest(key: str) -> str:
    return hmac.new(KEY, key.encode(), hashlib.sha256).hexdigest()


async def test_the_limit_applies_per_key_and_says_how_long_to_wait(counter: Counter) -> None:
    a = Budget("login:a", 3, 600)
    assert [await counter.take(a) for _ in range(3)] == [None, None, None]
    assert await counter.take(a) == 600
    counter.clock.advance(100.2)
    assert await counter.take(a) == 500  # rounded up: never "retry in 0 s"
    assert await counter.take(Budget("login:b", 3, 600)) is None


async def test_a_new_window_opens_when_the_last_one_ends(counter: Counter) -> None:
    k = Budget("k", 1, 60)
    assert await counter.take(k) is None
    counter.clock.advance(59.5)
    assert await counter.take(k) == 1
    counter.clock.advance(0.5)
    assert await counter.take(k) is None
    assert await counter.take(k) == 60


async def test_a_refused_call_counts_nothing(counter: Counter, clean_db: Conninfos) -> None:
    tight, loose = Budget("tight", 1, 60), Budget("loose", 3, 60)
    assert await counter.take(tight, loose) is None
    before = _rows(clean_db.owner)

    assert await counter.take(tight, loose) == 60

    assert _rows(clean_db.owner) == before == {_digest("tight"): 1, _digest("loose"): 1}
    assert [await counter.take(loose) for _ in range(3)] == [None, None, 60]


async def test_several_attempts_answer_the_longest_wait(counter: Counter) -> None:
    both = (Budget("a", 1, 60), Budget("b", 1, 600))
    assert await counter.take(*both) is None
    counter.clock.advance(10)
    assert await counter.take(*both) == 590


async def test_concurrent_attempts_are_all_counted(counter: Counter, clean_db: Conninfos) -> None:
    results: list[int | None] = []

    async def attempt(keys: Sequence[Attempt]) -> None:
        results.append(await counter.take(*keys))

    # Two key orders, so rows are locked in both orders at once: no deadlock, no lost count.
    async with anyio.create_task_group() as tg:
        for n in range(12):
            keys = [Budget("burst", 5, 600), Budget("other", 100, 600)]
            tg.start_soon(attempt, keys if n % 2 else keys[::-1])
    assert results.count(None) == 5
    assert results.count(600) == 7
    assert _rows(clean_db.owner) == {_digest("burst"): 5, _digest("other"): 5}


async def test_backoff_doubles_the_wait_after_the_free_attempts(counter: Counter) -> None:
    slow = Backoff("pair", free=2, base_seconds=1, max_seconds=8, memory_seconds=3600)
    assert [await counter.take(slow), await counter.take(slow)] == [None, None]
    waits = []
    for _ in range(6):
        wait = await counter.take(slow)
        assert wait is not None
        waits.append(wait)
        counter.clock.advance(wait - 0.5)
        assert await counter.take(slow) == 1  # half a second early: still waiting
        counter.clock.advance(0.5)
        assert await counter.take(slow) is None
    assert waits == [1, 2, 4, 8, 8, 8]
    # A quiet hour forgets everything.
    counter.clock.advance(3600)
    assert [await counter.take(slow) for _ in range(3)] == [None, None, 1]


async def test_giving_back_uncounts_a_success(counter: Counter, clean_db: Conninfos) -> None:
    budget = Budget("acct", 2, 600)
    slow = Backoff("pair", free=1, base_seconds=60, max_seconds=60, memory_seconds=3600)
    held = Hold((budget, slow), counter.clock.now())
    assert await counter.take(budget, slow) is None
    await counter.give_back(held)
    assert _rows(clean_db.owner) == {}  # the last hit given back takes the row with it
    assert await counter.take(budget, slow) is None
    counter.clock.advance(1)
    second = Hold((budget,), counter.clock.now())
    assert await counter.take(budget) is None
    await counter.give_back(second)
    assert _rows(clean_db.owner) == {_digest("acct"): 1, _digest("pair"): 1}


async def test_giving_back_never_touches_a_later_window(
    counter: Counter, clean_db: Conninfos
) -> None:
    budget = Budget("acct", 5, 60)
    old = Hold((budget,), counter.clock.now())
    assert await counter.take(budget) is None
    counter.clock.advance(61)
    assert await counter.take(budget) is None  # a new window, with its own failure

    await counter.give_back(old)

    assert _rows(clean_db.owner) == {_digest("acct"): 1}


async def test_keys_are_stored_as_keyed_digests(counter: Counter, clean_db: Conninfos) -> None:
    address = "login:address:203.0.113.9"
    assert await counter.take(Budget(address, 5, 60)) is None
    (stored,) = _rows(clean_db.owner)
    assert stored == _digest(address)
    assert stored != hashlib.sha256(address.encode()).hexdigest()
    other_server = hmac.new(attempt_key(b"another-secret"), address.encode(), hashlib.sha256)
    assert stored != other_server.hexdigest()


async def test_windows_longer_than_the_retention_are_refused(counter: Counter) -> None:
    with pytest.raises(ValueError, match="pruned"):
        await counter.take(Budget("long", 5, int(timedelta(days=2).total_seconds())))


def test_the_counter_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SqlAttemptCounter(None, b"short")  # type: ignore[arg-type]
