"""UserStore: SqlUserStore on PostgreSQL and FakeUserStore in memory, one behaviour."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from impextech.identity.domain.errors import EmailTaken
from impextech.identity.domain.model import User, UserStatus
from impextech.kernel.domain.principal import Role
from tests.contracts.rigs import SIDES, IdentityRig, add_users, identity_rig, user
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio

LATER = T0 + timedelta(hours=1)


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[IdentityRig]:
    async with identity_rig(request, request.param) as made:
        yield made


async def stored(rig: IdentityRig, found: User) -> User | None:
    async with rig.uow(found.tenant_id) as uow:
        return await uow.users.get(found.id)


async def test_an_added_user_is_seen_by_others_only_once_committed(rig: IdentityRig) -> None:
    ada = user(rig.acme, "Ada@Acme.Example", role=Role.ADMIN)
    async with rig.uow(rig.acme.id) as uow:
        await uow.users.add(ada)
        assert await uow.users.get(ada.id) == ada
        assert await stored(rig, ada) is None
        await uow.commit()
    assert await stored(rig, ada) == ada


async def test_leaving_without_commit_undoes_the_add(rig: IdentityRig) -> None:
    ada = user(rig.acme, "ada@acme.example")
    async with rig.uow(rig.acme.id) as uow:
        await uow.users.add(ada)
    assert await stored(rig, ada) is None
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.email_exists("ada@acme.example") is False


@pytest.mark.parametrize(
    "asked",
    ["jorg.ada@acme.example", "JORG.ADA@ACME.EXAMPLE", "Jorg.Ada@Acme.Example"],
)
async def test_get_by_email_ignores_case_as_lower_does(rig: IdentityRig, asked: str) -> None:
    ada = user(rig.acme, "Jorg.Ada@Acme.Example")
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.get_by_email(asked) == ada
        assert await uow.users.email_exists(asked) is True


@pytest.mark.parametrize(
    ("stored_as", "asked", "same"),
    [
        ("JÖRG@acme.example", "jörg@acme.example", True),
        ("ADMİN@acme.example", "admin@acme.example", True),  # U+0130 lowers to a plain i
        ("ΣΟΦΙΑΣ@acme.example", "σοφιασ@acme.example", True),  # no final ς: one letter at a time
        ("ΣΟΦΙΑΣ@acme.example", "σοφιας@acme.example", False),
        ("straße@acme.example", "STRASSE@acme.example", False),  # lower() does not fold ß
        (" ada@acme.example", "ada@acme.example", False),  # the store trims nothing
    ],
)
async def test_get_by_email_folds_each_letter_alone(
    rig: IdentityRig, stored_as: str, asked: str, same: bool
) -> None:
    ada = user(rig.acme, stored_as)
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.get_by_email(asked) == (ada if same else None)


async def test_an_email_is_unique_per_tenant_whatever_its_case_and_a_refusal_keeps_the_rest(
    rig: IdentityRig,
) -> None:
    await add_users(rig, user(rig.acme, "ada@acme.example"))
    bob = user(rig.acme, "bob@acme.example")
    async with rig.uow(rig.acme.id) as uow:
        await uow.users.add(bob)
        with pytest.raises(EmailTaken):
            await uow.users.add(user(rig.acme, "ADA@acme.EXAMPLE"))
        await uow.commit()
    assert await stored(rig, bob) == bob
    elsewhere = user(rig.globex, "ada@acme.example")
    await add_users(rig, elsewhere)
    assert await stored(rig, elsewhere) == elsewhere


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_writer_of_one_new_email_waits_for_the_first(
    rig: IdentityRig, first_commits: bool
) -> None:
    mine, theirs = user(rig.acme, "ada@acme.example"), user(rig.acme, "Ada@acme.example")
    async with rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            await first.users.add(mine)
            waiting = asyncio.create_task(second.users.add(theirs))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            if first_commits:
                await first.commit()
        if first_commits:
            with pytest.raises(EmailTaken):
                await asyncio.wait_for(waiting, 5)
        else:
            await asyncio.wait_for(waiting, 5)
        await second.commit()
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.get_by_email("ADA@ACME.EXAMPLE") == (
            mine if first_commits else theirs
        )


async def test_another_tenant_neither_sees_nor_changes_a_user(rig: IdentityRig) -> None:
    ada = user(rig.acme, "ada@acme.example", role=Role.ADMIN)
    await add_users(rig, ada)
    async with rig.uow(rig.globex.id) as uow:
        assert await uow.users.get(ada.id) is None
        assert await uow.users.get_by_email("ada@acme.example") is None
        assert await uow.users.email_exists("ada@acme.example") is False
        assert await uow.users.lock([ada.id]) == {}
        assert await uow.users.count_active_admins() == 0
        assert await uow.users.set_display_name(ada.id, "Mallory", LATER) is None
        assert await uow.users.set_role(ada.id, Role.SHOPPER, LATER) is None
        assert await uow.users.set_status(ada.id, UserStatus.DEACTIVATED, LATER) is None
        assert await uow.users.replace_password_hash(ada.id, ada.password_hash, "x", LATER) is False
        page = await uow.users.list(role=None, status=None, after=None, limit=10)
        assert (list(page.items), page.next_position) == ([], None)
        await uow.commit()
    assert await stored(rig, ada) == ada


async def test_count_active_admins_counts_active_admins_of_the_tenant(rig: IdentityRig) -> None:
    await add_users(
        rig,
        user(rig.acme, "a1@acme.example", role=Role.ADMIN),
        user(rig.acme, "a2@acme.example", role=Role.ADMIN),
        user(rig.acme, "a3@acme.example", role=Role.ADMIN, status=UserStatus.DEACTIVATED),
        user(rig.acme, "s1@acme.example", role=Role.SELLER),
    )
    await add_users(rig, user(rig.globex, "a1@globex.example", role=Role.ADMIN))
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.count_active_admins() == 2


async def test_each_setter_writes_its_column_and_updated_at_only(rig: IdentityRig) -> None:
    ada = user(rig.acme, "ada@acme.example", role=Role.SELLER)
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as uow:
        named = await uow.users.set_display_name(ada.id, "Countess", LATER)
        assert named == replace(ada, display_name="Countess", updated_at=LATER)
        promoted = await uow.users.set_role(ada.id, Role.ADMIN, LATER + timedelta(minutes=1))
        assert promoted == replace(named, role=Role.ADMIN, updated_at=LATER + timedelta(minutes=1))
        gone = await uow.users.set_status(ada.id, UserStatus.DEACTIVATED, LATER)
        assert gone == replace(promoted, status=UserStatus.DEACTIVATED, updated_at=LATER)
        assert await uow.users.set_role(uuid.uuid4(), Role.ADMIN, LATER) is None
        await uow.commit()
    assert await stored(rig, ada) == gone


async def test_replace_password_hash_swaps_only_the_hash_it_was_given(rig: IdentityRig) -> None:
    ada = user(rig.acme, "ada@acme.example")
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.replace_password_hash(ada.id, "stale", "new-1", LATER) is False
        assert await uow.users.get(ada.id) == ada  # not even updated_at moved
        assert await uow.users.replace_password_hash(ada.id, ada.password_hash, "new-1", LATER)
        assert (
            await uow.users.replace_password_hash(ada.id, ada.password_hash, "new-2", T0) is False
        )
        assert await uow.users.replace_password_hash(uuid.uuid4(), "new-1", "new-2", T0) is False
        await uow.commit()
    assert await stored(rig, ada) == replace(ada, password_hash="new-1", updated_at=LATER)


async def test_concurrent_writers_of_other_columns_keep_both_changes(rig: IdentityRig) -> None:
    ada = user(rig.acme, "ada@acme.example", role=Role.SELLER)
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            assert await first.users.set_role(ada.id, Role.ADMIN, LATER) is not None
            waiting = asyncio.create_task(second.users.set_display_name(ada.id, "Countess", T0))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await first.commit()
        both = replace(ada, role=Role.ADMIN, display_name="Countess", updated_at=T0)
        assert await asyncio.wait_for(waiting, 5) == both
        await second.commit()
    assert await stored(rig, ada) == both


async def test_a_password_swap_waits_and_then_compares_with_the_committed_hash(
    rig: IdentityRig,
) -> None:
    ada = user(rig.acme, "ada@acme.example")
    await add_users(rig, ada)
    async with rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            assert await first.users.replace_password_hash(ada.id, ada.password_hash, "a", LATER)
            waiting = asyncio.create_task(
                second.users.replace_password_hash(ada.id, ada.password_hash, "b", LATER)
            )
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await first.commit()
        assert await asyncio.wait_for(waiting, 5) is False
        await second.commit()
    assert await stored(rig, ada) == replace(ada, password_hash="a", updated_at=LATER)


# -- lock ---------------------------------------------------------------------------------------


def _low_high(rig: IdentityRig) -> tuple[User, User]:
    low = user(rig.acme, "low@acme.example", id=UUID(int=1))
    high = user(rig.acme, "high@acme.example", id=UUID(int=2))
    return low, high


async def test_lock_answers_the_users_found_by_id(rig: IdentityRig) -> None:
    low, high = _low_high(rig)
    await add_users(rig, low, high)
    async with rig.uow(rig.acme.id) as uow:
        assert await uow.users.lock([high.id, uuid.uuid4(), low.id]) == {
            low.id: low,
            high.id: high,
        }
        assert await uow.users.lock([]) == {}


async def test_lock_takes_rows_in_id_order_and_answers_them_as_the_waited_for_writer_left_them(
    rig: IdentityRig,
) -> None:
    low, high = _low_high(rig)
    await add_users(rig, low, high)
    async with rig.uow(rig.acme.id) as third, rig.uow(rig.acme.id) as second:
        async with rig.uow(rig.acme.id) as first:
            await first.users.lock([low.id])
            # Asked high first, it still starts with low: it waits there, holding nothing.
            waiting = asyncio.create_task(second.users.lock([high.id, low.id]))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            assert await asyncio.wait_for(third.users.lock([high.id]), 5) == {high.id: high}
            await third.commit()
            renamed = await first.users.set_display_name(low.id, "Renamed", LATER)
            await first.commit()
        assert await asyncio.wait_for(waiting, 5) == {low.id: renamed, high.id: high}


# -- list ---------------------------------------------------------------------------------------


@pytest.fixture
async def people(rig: IdentityRig) -> dict[str, User]:
    a = rig.acme
    everyone = {
        "ada": user(a, "ada@acme.example", role=Role.ADMIN, minutes=1),
        "bea": user(a, "bea@acme.example", role=Role.SELLER, minutes=2),
        "cy": user(a, "cy@acme.example", role=Role.SELLER, minutes=3,
                   status=UserStatus.DEACTIVATED),
        "dee": user(a, "dee@acme.example", minutes=3, id=UUID(int=7)),
        "eve": user(a, "eve@acme.example", minutes=3, id=UUID(int=8)),
    }  # fmt: skip
    await add_users(rig, *everyone.values())
    await add_users(rig, user(rig.globex, "gus@globex.example", minutes=0))
    return everyone


async def listed(
    rig: IdentityRig,
    *,
    role: Role | None = None,
    status: UserStatus | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> tuple[list[str], tuple[datetime, UUID] | None]:
    async with rig.uow(rig.acme.id) as uow:
        page = await uow.users.list(role=role, status=status, after=after, limit=limit)
    return [u.email.partition("@")[0] for u in page.items], page.next_position


async def test_list_filters_by_role_and_status_oldest_first(
    rig: IdentityRig, people: dict[str, User]
) -> None:
    cy, dee, eve = people["cy"], people["dee"], people["eve"]
    same_minute = [p.email.partition("@")[0] for p in sorted([cy, dee, eve], key=lambda u: u.id)]
    assert await listed(rig) == (["ada", "bea", *same_minute], None)
    assert await listed(rig, role=Role.SELLER) == (["bea", "cy"], None)
    assert await listed(rig, status=UserStatus.ACTIVE, role=Role.SHOPPER) == (["dee", "eve"], None)
    assert await listed(rig, status=UserStatus.DEACTIVATED) == (["cy"], None)
    assert await listed(rig, role=Role.ADMIN, status=UserStatus.DEACTIVATED) == ([], None)


async def test_list_pages_visit_everyone_once_with_the_last_ones_position(
    rig: IdentityRig, people: dict[str, User]
) -> None:
    whole, _ = await listed(rig)
    seen: list[str] = []
    after = None
    for _ in range(3):
        names, position = await listed(rig, after=after, limit=2)
        seen.extend(names)
        if position is None:
            break
        last = people[names[-1]]
        assert position == (last.created_at, last.id)
        after = position
    assert seen == whole
    assert len(seen) == 5
    # A page that ends exactly at the last user says there is no more.
    assert (await listed(rig, limit=5))[1] is None
