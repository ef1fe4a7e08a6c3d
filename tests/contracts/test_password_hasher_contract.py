"""PasswordHasher: Argon2PasswordHasher and FakePasswordHasher, one behaviour.

Each side also makes a hash the way an older configuration of itself did (argon2id at lower
costs; the fake at an older version), which must still verify and ask for a rehash.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher as Argon2
from argon2 import Type

from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.service.ports import PasswordHasher
from tests.fakes.identity import FakePasswordHasher

pytestmark = pytest.mark.anyio

PASSWORD = "plum orbit cactus 41"
FOREIGN = {
    "argon2": "fake$2$00112233$" + "0" * 64,
    "fake": "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
}


@dataclass
class HasherRig:
    side: str
    hasher: PasswordHasher
    older_hash: Callable[[str], Awaitable[str]]


@pytest.fixture(params=["argon2", "fake"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[HasherRig]:
    if request.param == "fake":
        yield HasherRig("fake", FakePasswordHasher(), FakePasswordHasher(version=1).hash)
        return
    hasher = Argon2PasswordHasher(2)
    older = Argon2(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)

    async def older_hash(password: str) -> str:
        return await asyncio.to_thread(older.hash, password)

    try:
        yield HasherRig("argon2", hasher, older_hash)
    finally:
        hasher.close()


async def test_only_the_right_password_verifies(rig: HasherRig) -> None:
    encoded = await rig.hasher.hash(PASSWORD)
    assert PASSWORD not in encoded
    assert await rig.hasher.verify(encoded, PASSWORD) is True
    assert await rig.hasher.verify(encoded, PASSWORD + " ") is False
    assert await rig.hasher.verify(encoded, PASSWORD.upper()) is False
    assert await rig.hasher.verify(encoded, "") is False


async def test_hashes_are_salted(rig: HasherRig) -> None:
    one, two = await rig.hasher.hash(PASSWORD), await rig.hasher.hash(PASSWORD)
    assert one != two
    assert [await rig.hasher.verify(h, PASSWORD) for h in (one, two)] == [True, True]


async def test_a_hash_of_older_parameters_verifies_and_asks_for_a_rehash(rig: HasherRig) -> None:
    older = await rig.older_hash(PASSWORD)
    current = await rig.hasher.hash(PASSWORD)
    assert await rig.hasher.verify(older, PASSWORD) is True
    assert await rig.hasher.verify(older, "wrong password!") is False
    assert (rig.hasher.needs_rehash(older), rig.hasher.needs_rehash(current)) == (True, False)


@pytest.mark.parametrize("kind", ["empty", "garbage", "the other kind's"])
async def test_a_hash_it_cannot_read_never_verifies_and_is_not_its_to_rehash(
    rig: HasherRig, kind: str
) -> None:
    encoded = {"empty": "", "garbage": "not-a-hash", "the other kind's": FOREIGN[rig.side]}[kind]
    assert await rig.hasher.verify(encoded, PASSWORD) is False
    assert rig.hasher.needs_rehash(encoded) is False


async def test_burning_takes_any_password_and_changes_no_hash(rig: HasherRig) -> None:
    encoded = await rig.hasher.hash(PASSWORD)
    for password in (PASSWORD, "", "x" * 256, "ünïcödé ✓"):
        await rig.hasher.burn(password)
    assert await rig.hasher.verify(encoded, PASSWORD) is True
    assert rig.hasher.needs_rehash(encoded) is False
