"""SessionStore: SqlSessionStore on PostgreSQL and FakeSessionStore in memory, one behaviour."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from impextech.identity.domain.model import RefreshTokenRecord, User, UserStatus
from impextech.kernel.domain.principal import Role
from tests.contracts.rigs import SIDES, IdentityRig, add_users, identity_rig, user
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[IdentityRig]:
    async with identity_rig(request, request.param) as made:
        yield made


@pytest.fixture
async def ada(rig: IdentityRig) -> User:
    ada = user(rig.acme, "ada@acme.example", role=Role.SELLER)
    await add_users(rig, ada)
    return ada


def digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


async def start(
    rig: IdentityRig,
    who: User,
    token: str,
    *,
    at: datetime = T0,
    token_days: int = 14,
    session_days: int = 30,
) -> UUID:
    """A committed session of ``who`` with its first refresh token ``token``."""
    session_id = uuid.uuid4()
    async with rig.uow(who.tenant_id) as uow:
        await uow.sessions.start_session(
            session_id, who.id, digest(token), at, at + token_days * DAY, at + session_days * DAY
        )
        await uow.commit()
    return session_id


async def found(rig: IdentityRig, who: User, token: str) -> RefreshTokenRecord | None:
    async with rig.uow(who.tenant_id) as uow:
        return await uow.sessions.find_refresh_token(digest(token))


def record(
    who: User,
    session_id: UUID,
    expires_at: datetime,
    session_expires_at: datetime,
    *,
    token_id: UUID,
    used_at: datetime | None = None,
    revoked: bool = False,
) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        token_id, who.tenant_id, session_id, who.id, expires_at, used_at, revoked,
        session_expires_at,
    )  # fmt: skip


async def test_a_session_starts_with_its_first_token_seen_by_others_once_committed(
    rig: IdentityRig, ada: User
) -> None:
    session_id = uuid.uuid4()
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.start_session(
            session_id, ada.id, digest("r1"), T0, T0 + DAY, T0 + 2 * DAY
        )
        mine = await uow.sessions.find_refresh_token(digest("r1"))
        assert mine is not None
        assert mine == record(ada, session_id, T0 + DAY, T0 + 2 * DAY, token_id=mine.id)
        assert await found(rig, ada, "r1") is None
        assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.SELLER, True)
        await uow.commit()
    assert await found(rig, ada, "r1") == mine
    assert await found(rig, ada, "unknown") is None


async def test_leaving_without_commit_undoes_the_session(rig: IdentityRig, ada: User) -> None:
    session_id = uuid.uuid4()
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.start_session(session_id, ada.id, digest("r1"), T0, T0 + DAY, T0 + DAY)
    assert await found(rig, ada, "r1") is None
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.sessions.session_is_live(session_id, ada.id) is None


async def test_rotation_adds_a_token_to_the_same_session(rig: IdentityRig, ada: User) -> None:
    session_id = await start(rig, ada, "r1")
    first = await found(rig, ada, "r1")
    assert first is not None
    later = T0 + DAY
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.sessions.mark_used(first.id, later) is True
        await uow.sessions.add_refresh_token(session_id, ada.id, digest("r2"), later, later + DAY)
        await uow.commit()
    ends = T0 + 30 * DAY
    assert await found(rig, ada, "r1") == record(
        ada, session_id, T0 + 14 * DAY, ends, token_id=first.id, used_at=later
    )
    second = await found(rig, ada, "r2")
    assert second is not None
    assert second.id != first.id
    assert second == record(ada, session_id, later + DAY, ends, token_id=second.id)


async def test_a_token_is_marked_used_once(rig: IdentityRig, ada: User) -> None:
    await start(rig, ada, "r1")
    first = await found(rig, ada, "r1")
    assert first is not None
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.sessions.mark_used(first.id, T0 + DAY) is True
        assert await uow.sessions.mark_used(first.id, T0 + 2 * DAY) is False
        assert await uow.sessions.mark_used(uuid.uuid4(), T0) is False
        await uow.commit()
    after = await found(rig, ada, "r1")
    assert after is not None
    assert after.used_at == T0 + DAY


@pytest.mark.parametrize("first_commits", [True, False])
async def test_finding_a_token_locks_it_until_the_finder_ends(
    rig: IdentityRig, ada: User, first_commits: bool
) -> None:
    await start(rig, ada, "r1")
    async with rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            mine = await first.sessions.find_refresh_token(digest("r1"))
            assert mine is not None
            assert mine.used_at is None
            waiting = asyncio.create_task(second.sessions.find_refresh_token(digest("r1")))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            assert await first.sessions.mark_used(mine.id, T0 + DAY) is True
            if first_commits:
                await first.commit()
        theirs = await asyncio.wait_for(waiting, 5)
        assert theirs is not None
        assert theirs.used_at == (T0 + DAY if first_commits else None)
        assert await second.sessions.mark_used(theirs.id, T0 + 2 * DAY) is (not first_commits)


async def test_revoking_a_session_keeps_the_first_revocation(rig: IdentityRig, ada: User) -> None:
    session_id = await start(rig, ada, "r1")
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.revoke_session(session_id, T0 + DAY, "logout")
        await uow.sessions.revoke_session(session_id, T0 + 2 * DAY, "again")
        await uow.sessions.revoke_session(uuid.uuid4(), T0, "nothing")
        await uow.commit()
    token = await found(rig, ada, "r1")
    assert token is not None
    assert token.session_revoked is True
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.SELLER, False)
        # Revoked at day 1: purging what ended before day 1 and a moment leaves it.
        assert await uow.sessions.purge_spent(T0 + DAY) == (0, 0)
        assert await uow.sessions.purge_spent(T0 + DAY + timedelta(microseconds=1)) == (1, 1)


async def test_revoking_a_users_sessions_counts_the_live_ones_of_that_user(
    rig: IdentityRig, ada: User
) -> None:
    bea = user(rig.acme, "bea@acme.example")
    await add_users(rig, bea)
    ended = await start(rig, ada, "a1")
    live = [await start(rig, ada, "a2"), await start(rig, ada, "a3")]
    other = await start(rig, bea, "b1")
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.revoke_session(ended, T0, "logout")
        assert await uow.sessions.revoke_user_sessions(ada.id, T0 + DAY, "logout-all") == 2
        assert await uow.sessions.revoke_user_sessions(ada.id, T0 + DAY, "logout-all") == 0
        await uow.commit()
    async with rig.uow(rig.acme.id) as uow:
        for session_id in (ended, *live):
            assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.SELLER, False)
        assert await uow.sessions.session_is_live(other, bea.id) == (Role.SHOPPER, True)
        # The later revocations, at day 1, are what purging just after day 0 leaves alone.
        assert await uow.sessions.purge_spent(T0 + timedelta(microseconds=1)) == (1, 1)


async def test_a_session_is_live_while_unrevoked_and_its_user_active_whatever_its_expiry(
    rig: IdentityRig, ada: User
) -> None:
    session_id = await start(rig, ada, "r1", token_days=1, session_days=1)
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.SELLER, True)
        assert await uow.sessions.session_is_live(session_id, uuid.uuid4()) is None
        assert await uow.sessions.session_is_live(uuid.uuid4(), ada.id) is None
        await uow.users.set_role(ada.id, Role.ADMIN, T0)
        assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.ADMIN, True)
        await uow.users.set_status(ada.id, UserStatus.DEACTIVATED, T0)
        assert await uow.sessions.session_is_live(session_id, ada.id) == (Role.ADMIN, False)


async def test_another_tenant_neither_sees_nor_ends_a_session(rig: IdentityRig, ada: User) -> None:
    session_id = await start(rig, ada, "r1")
    token = await found(rig, ada, "r1")
    assert token is not None
    async with rig.uow(rig.globex.id) as uow:
        assert await uow.sessions.find_refresh_token(digest("r1")) is None
        assert await uow.sessions.mark_used(token.id, T0) is False
        await uow.sessions.revoke_session(session_id, T0, "stolen")
        assert await uow.sessions.revoke_user_sessions(ada.id, T0, "stolen") == 0
        assert await uow.sessions.session_is_live(session_id, ada.id) is None
        assert await uow.sessions.purge_spent(T0 + 365 * DAY) == (0, 0)
        await uow.commit()
    assert await found(rig, ada, "r1") == token


async def test_purge_deletes_expired_tokens_and_ended_sessions_with_all_their_tokens(
    rig: IdentityRig, ada: User
) -> None:
    # A: lives 30 days, its first token (14 days) rotated on day 10 to one lasting to day 24.
    a = await start(rig, ada, "a1")
    first = await found(rig, ada, "a1")
    assert first is not None
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.mark_used(first.id, T0 + 10 * DAY)
        await uow.sessions.add_refresh_token(a, ada.id, digest("a2"), T0 + 10 * DAY, T0 + 24 * DAY)
        await uow.commit()
    # B: ends on day 5 whatever its token says; C: revoked on day 2; D: fresh on day 20.
    await start(rig, ada, "b1", token_days=5, session_days=5)
    c = await start(rig, ada, "c1")
    await start(rig, ada, "d1", at=T0 + 20 * DAY)
    async with rig.uow(rig.acme.id) as uow:
        await uow.sessions.revoke_session(c, T0 + 2 * DAY, "logout")
        await uow.commit()

    async def purge(day: int) -> tuple[int, int]:
        async with rig.uow(rig.acme.id) as uow:
            purged = await uow.sessions.purge_spent(T0 + day * DAY + timedelta(seconds=1))
            await uow.commit()
        return purged

    assert await purge(1) == (0, 0)
    assert await purge(2) == (1, 1)  # C and its token
    assert await purge(5) == (1, 1)  # B and its token
    assert await purge(14) == (1, 0)  # A's used first token: expired
    assert await found(rig, ada, "a1") is None
    assert await found(rig, ada, "a2") is not None
    assert await purge(30) == (1, 1)  # A has ended: its second token goes with it
    assert await found(rig, ada, "d1") is not None
    assert await purge(50) == (1, 1)  # D
