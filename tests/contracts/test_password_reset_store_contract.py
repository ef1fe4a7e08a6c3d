"""PasswordResetStore: SqlPasswordResetStore on PostgreSQL and FakePasswordResetStore in memory,
one behaviour."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import pytest

from impextech.identity.domain.model import User
from impextech.identity.domain.password_reset import PasswordResetRecord
from tests.contracts.rigs import SIDES, IdentityRig, add_users, identity_rig, user
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio

LIFE = timedelta(minutes=30)
MINUTE = timedelta(minutes=1)


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[IdentityRig]:
    async with identity_rig(request, request.param) as made:
        yield made


@pytest.fixture
async def ada(rig: IdentityRig) -> User:
    ada = user(rig.acme, "ada@acme.example")
    await add_users(rig, ada)
    return ada


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


async def issue(rig: IdentityRig, who: User, token: str, minutes: int = 0) -> PasswordResetRecord:
    """A committed reset token of ``who``, made ``minutes`` after T0."""
    reset_id = uuid.uuid4()
    at = T0 + minutes * MINUTE
    async with rig.reset_uow(who.tenant_id) as uow:
        await uow.resets.add(reset_id, who.id, digest(token), at, at + LIFE)
        await uow.commit()
    return PasswordResetRecord(reset_id, who.tenant_id, who.id, digest(token), at, at + LIFE, None)


async def get(rig: IdentityRig, tenant_id: UUID, reset_id: UUID) -> PasswordResetRecord | None:
    async with rig.reset_uow(tenant_id) as uow:
        return await uow.resets.get(reset_id)


async def test_an_added_token_is_found_by_id_and_hash_once_committed(
    rig: IdentityRig, ada: User
) -> None:
    reset_id = uuid.uuid4()
    expected = PasswordResetRecord(reset_id, rig.acme.id, ada.id, digest("t"), T0, T0 + LIFE, None)
    async with rig.reset_uow(rig.acme.id) as uow:
        await uow.resets.add(reset_id, ada.id, digest("t"), T0, T0 + LIFE)
        assert await uow.resets.get(reset_id) == expected
        assert await get(rig, rig.acme.id, reset_id) is None
        await uow.commit()
    async with rig.reset_uow(rig.acme.id) as uow:
        assert await uow.resets.get(reset_id) == expected
        assert await uow.resets.find(digest("t")) == expected
        assert await uow.resets.find(digest("other")) is None
        assert await uow.resets.get(uuid.uuid4()) is None


async def test_a_token_is_used_once_and_only_before_it_expires(rig: IdentityRig, ada: User) -> None:
    first, second = await issue(rig, ada, "t1"), await issue(rig, ada, "t2")
    async with rig.reset_uow(rig.acme.id) as uow:
        assert await uow.resets.use(first.id, T0 + 29 * MINUTE) is True
        assert await uow.resets.use(first.id, T0 + 29 * MINUTE) is False
        assert await uow.resets.use(second.id, T0 + LIFE) is False  # expired at that instant
        assert await uow.resets.use(uuid.uuid4(), T0) is False
        await uow.commit()
    assert await get(rig, rig.acme.id, first.id) == PasswordResetRecord(
        first.id, rig.acme.id, ada.id, digest("t1"), T0, T0 + LIFE, T0 + 29 * MINUTE
    )
    assert await get(rig, rig.acme.id, second.id) == second


async def test_retiring_a_user_uses_up_their_unused_tokens_only(
    rig: IdentityRig, ada: User
) -> None:
    bea = user(rig.acme, "bea@acme.example")
    await add_users(rig, bea)
    used, expired = await issue(rig, ada, "used"), await issue(rig, ada, "expired", minutes=-60)
    fresh, others = await issue(rig, ada, "fresh", minutes=5), await issue(rig, bea, "bea")
    later = T0 + 10 * MINUTE
    async with rig.reset_uow(rig.acme.id) as uow:
        assert await uow.resets.use(used.id, T0) is True
        assert await uow.resets.retire_user(ada.id, later) == 2
        assert await uow.resets.retire_user(ada.id, later) == 0
        await uow.commit()
    assert [await get(rig, rig.acme.id, r.id) for r in (used, expired, fresh, others)] == [
        PasswordResetRecord(used.id, rig.acme.id, ada.id, digest("used"), T0, T0 + LIFE, T0),
        PasswordResetRecord(expired.id, rig.acme.id, ada.id, digest("expired"),
                            T0 - 60 * MINUTE, T0 - 30 * MINUTE, later),
        PasswordResetRecord(fresh.id, rig.acme.id, ada.id, digest("fresh"),
                            T0 + 5 * MINUTE, T0 + 35 * MINUTE, later),
        others,
    ]  # fmt: skip


async def test_leaving_without_commit_undoes_adding_and_using(rig: IdentityRig, ada: User) -> None:
    kept = await issue(rig, ada, "kept")
    lost = uuid.uuid4()
    async with rig.reset_uow(rig.acme.id) as uow:
        await uow.resets.add(lost, ada.id, digest("lost"), T0, T0 + LIFE)
        assert await uow.resets.use(kept.id, T0) is True
        assert await uow.resets.retire_user(ada.id, T0) == 1
    assert await get(rig, rig.acme.id, lost) is None
    assert await get(rig, rig.acme.id, kept.id) == kept


async def test_another_tenant_neither_sees_nor_uses_a_token(rig: IdentityRig, ada: User) -> None:
    mine = await issue(rig, ada, "t")
    async with rig.reset_uow(rig.globex.id) as uow:
        assert await uow.resets.get(mine.id) is None
        assert await uow.resets.find(digest("t")) is None
        assert await uow.resets.use(mine.id, T0) is False
        assert await uow.resets.retire_user(ada.id, T0) == 0
        await uow.commit()
    assert await get(rig, rig.acme.id, mine.id) == mine
