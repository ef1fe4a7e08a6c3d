"""The attempt counter: a window per key, opened by its first attempt, on the database's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio
import pytest

from impextech.identity.adapters.rate_limit import SqlAttemptCounter
from impextech.identity.service.ports import Attempt
from impextech.kernel.db import Database
from impextech.platform.database import Conninfos

pytestmark = pytest.mark.anyio

Hit = Callable[[str, int, int], Coroutine[Any, Any, int | None]]


@pytest.fixture
async def hit(clean_db: Conninfos) -> AsyncIterator[Hit]:
    database = Database.connect(clean_db.app, size=4)

    async def one(key: str, limit: int, window: int) -> int | None:
        async with database.transaction(None) as conn:
            return await SqlAttemptCounter(conn).hit_all([Attempt(key, limit, window)])

    yield one
    await database.dispose()


async def test_the_limit_applies_per_key_and_says_how_long_to_wait(hit: Hit) -> None:
    assert [await hit("login:a", 3, 600) for _ in range(3)] == [None, None, None]
    wait = await hit("login:a", 3, 600)
    assert wait is not None
    assert 595 <= wait <= 600
    assert await hit("login:b", 3, 600) is None


async def test_a_new_window_opens_after_the_last_one_ends(hit: Hit) -> None:
    assert await hit("k", 1, 1) is None
    assert await hit("k", 1, 1) == 1
    await anyio.sleep(1.2)
    assert await hit("k", 1, 1) is None
    assert await hit("k", 1, 1) == 1


async def test_concurrent_attempts_are_all_counted(hit: Hit) -> None:
    results: list[int | None] = []

    async def attempt() -> None:
        results.append(await hit("burst", 5, 600))

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(attempt)
    assert results.count(None) == 5
    assert len(results) == 12


async def test_several_attempts_answer_the_longest_wait(clean_db: Conninfos) -> None:
    database = Database.connect(clean_db.app, size=1)
    try:
        async with database.transaction(None) as conn:
            counter = SqlAttemptCounter(conn)
            both = [Attempt("a", 1, 60), Attempt("b", 1, 600)]
            assert await counter.hit_all(both) is None
            wait = await counter.hit_all(both)
        assert wait is not None
        assert 595 <= wait <= 600
    finally:
        await database.dispose()
