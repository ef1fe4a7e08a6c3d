from __future__ import annotations

import asyncio
import os
import threading

import pytest
from argon2 import extract_parameters

from impextech.identity.adapters.argon2_hasher import HASHING_NICENESS, Argon2PasswordHasher

pytestmark = pytest.mark.anyio


async def test_hashes_are_argon2id_at_owasp_parameters() -> None:
    hasher = Argon2PasswordHasher(1)
    try:
        encoded = await hasher.hash("plum orbit cactus 41")
        params = extract_parameters(encoded)
        assert (params.type.name, params.memory_cost, params.time_cost, params.parallelism) == (
            "ID",
            19 * 1024,
            2,
            1,
        )
        assert await hasher.verify(encoded, "plum orbit cactus 41")
        assert not await hasher.verify(encoded, "plum orbit cactus 42")
        assert not await hasher.verify("not-a-hash", "x")
    finally:
        hasher.close()


async def test_hashing_is_bounded_runs_off_the_loop_and_at_lower_priority() -> None:
    hasher = Argon2PasswordHasher(2)
    try:
        # Off the loop, counted rather than timed: the loop keeps turning while one hash is in
        # progress. Hashed on the loop, the hash would run to its end in one turn, and the
        # first look after it starts would already find it done.
        one = asyncio.create_task(hasher.hash("password number one"))
        turns_while_hashing = 0
        for _ in range(100_000):
            if one.done():
                break
            turns_while_hashing += 1
            await asyncio.sleep(0.001)
        await one
        assert turns_while_hashing >= 2  # the first look comes before the hash has started
        await asyncio.gather(*(hasher.hash(f"password number {i}") for i in range(6)))
        workers = [
            t for t in threading.enumerate() if t.name.startswith(hasher.thread_name_prefix + "_")
        ]
        assert len(workers) == 2
        for worker in workers:
            assert worker.native_id is not None
            assert os.getpriority(os.PRIO_PROCESS, worker.native_id) >= HASHING_NICENESS
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < HASHING_NICENESS
    finally:
        hasher.close()
