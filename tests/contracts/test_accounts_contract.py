"""Accounts, the catalog's port: identity's facade (``Identity.active_role`` over the user
directory) on PostgreSQL and the catalog's ``FakeAccounts``, one behaviour."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from impextech.identity.domain.model import User, UserStatus
from impextech.kernel.domain.principal import Role
from tests.contracts.rigs import SIDES, IdentityRig, add_users, identity_rig, user

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[IdentityRig]:
    async with identity_rig(request, request.param) as made:
        yield made


@pytest.fixture
async def people(rig: IdentityRig) -> dict[str, User]:
    acme = {
        "admin": user(rig.acme, "admin@acme.example", role=Role.ADMIN),
        "seller": user(rig.acme, "seller@acme.example", role=Role.SELLER),
        "shopper": user(rig.acme, "shopper@acme.example"),
        "gone": user(rig.acme, "gone@acme.example", role=Role.SELLER,
                     status=UserStatus.DEACTIVATED),
    }  # fmt: skip
    globex = {"globex": user(rig.globex, "seller@globex.example", role=Role.SELLER)}
    await add_users(rig, *acme.values())
    await add_users(rig, *globex.values())
    return acme | globex


async def test_an_active_account_answers_its_role_now_and_anything_else_none(
    rig: IdentityRig, people: dict[str, User]
) -> None:
    accounts = rig.accounts(list(people.values()))
    acme, globex = rig.acme.id, rig.globex.id
    asked = {
        "admin": await accounts.active_role(acme, people["admin"].id),
        "seller": await accounts.active_role(acme, people["seller"].id),
        "shopper": await accounts.active_role(acme, people["shopper"].id),
        "deactivated": await accounts.active_role(acme, people["gone"].id),
        "globex's seller in acme": await accounts.active_role(acme, people["globex"].id),
        "globex's seller at home": await accounts.active_role(globex, people["globex"].id),
        "acme's admin in globex": await accounts.active_role(globex, people["admin"].id),
        "unknown": await accounts.active_role(acme, uuid.uuid4()),
    }
    assert asked == {
        "admin": Role.ADMIN,
        "seller": Role.SELLER,
        "shopper": Role.SHOPPER,
        "deactivated": None,
        "globex's seller in acme": None,
        "globex's seller at home": Role.SELLER,
        "acme's admin in globex": None,
        "unknown": None,
    }
