"""The PostgreSQL rate limiter: a window per key, opened by its first attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from impextech.identity.adapters.rate_limit import PostgresRateLimiter
from impextech.kernel.db import Database
from impextech.platform.database import Conninfos

pytestmark = pytest.mark.anyio


@pytest.fixture
async def limiter(clean_db: Conninfos) -> AsyncIterator[PostgresRateLimiter]:
    database = Database.connect(clean_db.app, size=2)
    yield PostgresRateLimiter(database)
    await database.dispose()


async def test_the_limit_applies_per_key_and_says_how_long_to_wait(
    limiter: PostgresRateLimiter,
) -> None:
    assert [await limiter.hit("login:a", 3, 600) for _ in range(3)] == [None, None, None]
    wait = await limiter.hit("login:a", 3, 600)
    assert wait is not None
    assert 595 <= wait <= 600
    assert await limiter.hit("login:b", 3, 600) is None


async def test_a_new_window_opens_after_the_last_one_ends(limiter: PostgresRateLimiter) -> None:
    assert await limiter.hit("k", 1, 1) is None
    assert await limiter.hit("k", 1, 1) == 1
    await anyio.sleep(1.2)
    assert await limiter.hit("k", 1, 1) is None
    assert await limiter.hit("k", 1, 1) == 1


async def test_concurrent_attempts_are_all_counted(limiter: PostgresRateLimiter) -> None:
    results: list[int | None] = []

    async def attempt() -> None:
        results.append(await limiter.hit("burst", 5, 600))

    async with anyio.create_task_group() as tg:
        for _ in range(12):
            tg.start_soon(attempt)
    assert results.count(None) == 5
    assert len(results) == 12
