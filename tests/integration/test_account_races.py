"""Races on one account: a demotion or deactivation must stick whatever the user does meanwhile,
and a marketplace never loses its last active admin.

Two kinds of test. The service-level ones force the dangerous interleaving every time: the
first use case stops right after it has read the user (a gate in a real SQL store), the second
runs until it finishes or waits on a row lock, then the first goes on. The HTTP ones fire real
concurrent requests through the in-process app in both orders, many rounds, and read the rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.jwt_tokens import JwtAccessTokenCodec
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlUserStore
from impextech.identity.domain.model import User
from impextech.identity.service.auth import AuthPolicy, AuthService
from impextech.identity.service.users import UserService
from impextech.kernel.db import Connection, Database
from impextech.kernel.domain.clock import SystemClock
from impextech.kernel.domain.errors import ImpextechError
from impextech.kernel.domain.principal import Principal, Role
from impextech.platform.database import Conninfos
from tests.conftest import TEST_SECRET
from tests.support.world import PASSWORD, Account, Tenant, login

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "quartz meadow 99 falcon"


# -- the gate: a real SQL user store that stops once, right after its first read -------------


class Gate:
    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self._used = False

    async def pause(self) -> None:
        if not self._used:
            self._used = True
            self.reached.set()
            await self.release.wait()


class PausingUserStore(SqlUserStore):
    def __init__(self, conn: Connection, tenant_id: uuid.UUID, gate: Gate) -> None:
        super().__init__(conn, tenant_id)
        self._gate = gate

    async def get(self, user_id: uuid.UUID) -> User | None:
        user = await super().get(user_id)
        await self._gate.pause()
        return user

    async def lock(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, User]:
        users = await super().lock(user_ids)
        await self._gate.pause()
        return users


class PausingUnitOfWork(SqlIdentityUnitOfWork):
    def __init__(self, database: Database, tenant_id: uuid.UUID, gate: Gate) -> None:
        super().__init__(database, tenant_id)
        self._gate = gate

    def _bind(self, conn: Connection) -> None:
        super()._bind(conn)
        assert self.tenant_id is not None
        self.users = PausingUserStore(conn, self.tenant_id, self._gate)


Outcome = object | ImpextechError


async def _outcome(call: Awaitable[object]) -> Outcome:
    try:
        return await call
    except ImpextechError as exc:
        return exc


def _waiting_on_a_lock(owner: str) -> bool:
    with psycopg.connect(owner) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return row is not None and int(row[0]) > 0


async def interleave(
    owner: str,
    gate: Gate,
    first: Callable[[], Awaitable[object]],
    second: Callable[[], Awaitable[object]],
) -> tuple[Outcome, Outcome]:
    """``first`` runs until it has read the user; ``second`` then runs until it is done or
    waits on a lock that ``first`` holds; then ``first`` goes on. Both outcomes, in order."""
    one = asyncio.create_task(_outcome(first()))
    await asyncio.wait_for(gate.reached.wait(), 10)
    two = asyncio.create_task(_outcome(second()))
    deadline = asyncio.get_running_loop().time() + 10
    while not two.done() and not await asyncio.to_thread(_waiting_on_a_lock, owner):
        assert asyncio.get_running_loop().time() < deadline, "second neither ended nor waited"
        await asyncio.sleep(0.01)
    gate.release.set()
    return await one, await two


# -- helpers over the real database -------------------------------------------------------------


def _row(owner: str, tenant: Tenant, user_id: uuid.UUID) -> tuple[str, str, str, str]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute(
            "SELECT role, status, display_name, password_hash FROM users WHERE id = %s",
            (user_id,),
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1]), str(row[2]), str(row[3])


def _set_user(owner: str, tenant: Tenant, user_id: uuid.UUID, role: str, status: str) -> None:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "UPDATE users SET role = %s, status = %s WHERE id = %s", (role, status, user_id)
        )


def _active_admins(owner: str, tenant: Tenant) -> set[uuid.UUID]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        rows = conn.execute(
            "SELECT id FROM users WHERE role = 'admin' AND status = 'active'"
        ).fetchall()
    return {r[0] for r in rows}


def _live_sessions(owner: str, tenant: Tenant, user_id: uuid.UUID) -> int:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute(
            "SELECT count(*) FROM auth_sessions WHERE user_id = %s AND revoked_at IS NULL",
            (user_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _principal(tenant: Tenant, account: Account, role: Role) -> Principal:
    # Any session id: the use cases under test take the principal as authenticated already.
    return Principal(tenant.id, account.id, role, uuid.uuid4())


def _users(app: FastAPI, gate: Gate | None = None) -> UserService:
    database: Database = app.state.database
    if gate is None:
        return UserService(lambda t: SqlIdentityUnitOfWork(database, t), SystemClock())
    return UserService(lambda t: PausingUnitOfWork(database, t, gate), SystemClock())


def _auth(app: FastAPI, gate: Gate | None = None) -> AuthService:
    database: Database = app.state.database

    def uow(tenant_id: uuid.UUID) -> SqlIdentityUnitOfWork:
        if gate is None:
            return SqlIdentityUnitOfWork(database, tenant_id)
        return PausingUnitOfWork(database, tenant_id, gate)

    return AuthService(
        uow,
        Argon2PasswordHasher(1),
        JwtAccessTokenCodec(TEST_SECRET.encode()),
        SystemClock(),
        AuthPolicy(),
    )


def _code(outcome: Outcome) -> str:
    assert isinstance(outcome, ImpextechError), outcome
    return outcome.code


# -- the dangerous interleavings, forced ------------------------------------------------------


async def test_a_profile_edit_that_read_before_a_demotion_does_not_undo_it(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    target, admin = acme["seller"], acme["admin"]
    _set_user(clean_db.owner, acme, target.id, "admin", "active")
    gate = Gate()
    edit, demote = await interleave(
        clean_db.owner,
        gate,
        lambda: _users(app, gate).update_me(
            _principal(acme, target, Role.ADMIN), display_name="Still Here"
        ),
        lambda: _users(app).change_role(
            _principal(acme, admin, Role.ADMIN), target.id, Role.SHOPPER
        ),
    )
    assert isinstance(edit, User)
    assert isinstance(demote, User)
    role, status, name, _ = _row(clean_db.owner, acme, target.id)
    assert (role, status, name) == ("shopper", "active", "Still Here")


async def test_a_profile_edit_that_read_before_a_deactivation_does_not_undo_it(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    target, admin = acme["seller"], acme["admin"]
    gate = Gate()
    edit, off = await interleave(
        clean_db.owner,
        gate,
        lambda: _users(app, gate).update_me(
            _principal(acme, target, Role.SELLER), display_name="Still Here"
        ),
        lambda: _users(app).deactivate(_principal(acme, admin, Role.ADMIN), target.id),
    )
    assert isinstance(edit, User)
    assert isinstance(off, User)
    role, status, name, _ = _row(clean_db.owner, acme, target.id)
    assert (role, status, name) == ("seller", "deactivated", "Still Here")
    assert _live_sessions(clean_db.owner, acme, target.id) == 0


async def test_a_password_change_that_read_before_a_demotion_does_not_undo_it(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    target, admin = acme["seller"], acme["admin"]
    _set_user(clean_db.owner, acme, target.id, "admin", "active")
    gate = Gate()
    changed, demote = await interleave(
        clean_db.owner,
        gate,
        lambda: _auth(app, gate).change_password(
            _principal(acme, target, Role.ADMIN), PASSWORD, NEW_PASSWORD, "192.0.2.1"
        ),
        lambda: _users(app).change_role(
            _principal(acme, admin, Role.ADMIN), target.id, Role.SELLER
        ),
    )
    assert not isinstance(changed, ImpextechError), changed
    assert isinstance(demote, User)
    role, status, _, password_hash = _row(clean_db.owner, acme, target.id)
    assert (role, status) == ("seller", "active")
    assert await Argon2PasswordHasher(1).verify(password_hash, NEW_PASSWORD)


async def test_a_password_change_that_read_before_a_deactivation_does_not_undo_it(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    target, admin = acme["seller"], acme["admin"]
    gate = Gate()
    changed, off = await interleave(
        clean_db.owner,
        gate,
        lambda: _auth(app, gate).change_password(
            _principal(acme, target, Role.SELLER), PASSWORD, NEW_PASSWORD, "192.0.2.1"
        ),
        lambda: _users(app).deactivate(_principal(acme, admin, Role.ADMIN), target.id),
    )
    role, status, _, password_hash = _row(clean_db.owner, acme, target.id)
    assert (role, status) == ("seller", "deactivated")
    assert _code(changed) == "invalid-token"
    assert isinstance(off, User)
    assert await Argon2PasswordHasher(1).verify(password_hash, PASSWORD)
    assert _live_sessions(clean_db.owner, acme, target.id) == 0


async def test_a_password_change_refuses_when_the_password_changed_after_it_checked_it(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    gate = Gate()
    slow, fast = await interleave(
        clean_db.owner,
        gate,
        lambda: _auth(app, gate).change_password(
            _principal(acme, shopper, Role.SHOPPER), PASSWORD, NEW_PASSWORD, "192.0.2.1"
        ),
        lambda: _auth(app).change_password(
            _principal(acme, shopper, Role.SHOPPER), PASSWORD, "amber tundra 31 kettle", "192.0.2.2"
        ),
    )
    _, _, _, password_hash = _row(clean_db.owner, acme, shopper.id)
    assert await Argon2PasswordHasher(1).verify(password_hash, "amber tundra 31 kettle")
    assert _code(slow) == "password-changed-meanwhile"
    assert not isinstance(fast, ImpextechError), fast
    # the winner's new session is the only one left
    assert _live_sessions(clean_db.owner, acme, shopper.id) == 1


@pytest.mark.parametrize("action", ["demote", "deactivate"])
async def test_two_admins_removing_each_other_leave_one_active_admin(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos, action: str
) -> None:
    acme = world["acme"]
    first, second = acme["admin"], acme["seller"]
    _set_user(clean_db.owner, acme, second.id, "admin", "active")

    def remove(actor: Account, target: Account, gate: Gate | None) -> Awaitable[User]:
        users = _users(app, gate)
        principal = _principal(acme, actor, Role.ADMIN)
        if action == "demote":
            return users.change_role(principal, target.id, Role.SELLER)
        return users.deactivate(principal, target.id)

    gate = Gate()
    one, two = await interleave(
        clean_db.owner,
        gate,
        lambda: remove(first, second, gate),
        lambda: remove(second, first, None),
    )
    assert _active_admins(clean_db.owner, acme) == {first.id}
    assert isinstance(one, User)
    assert _code(two) == "last-active-admin"


async def test_an_admin_demoted_meanwhile_cannot_demote_anyone(
    app: FastAPI, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    admin, second, seller2 = acme["admin"], acme["seller"], acme["seller2"]
    for who in (second, seller2):
        _set_user(clean_db.owner, acme, who.id, "admin", "active")
    # second was authenticated as an admin, then admin demoted them before their request ran
    await _users(app).change_role(_principal(acme, admin, Role.ADMIN), second.id, Role.SELLER)
    stale = _principal(acme, second, Role.ADMIN)
    refused = await _outcome(_users(app).change_role(stale, seller2.id, Role.SHOPPER))
    assert _code(refused) == "admin-role-lost"
    off = await _outcome(_users(app).deactivate(stale, seller2.id))
    assert _code(off) == "admin-role-lost"
    # and the last active admin cannot be removed by a stale principal either
    _set_user(clean_db.owner, acme, seller2.id, "seller", "active")
    last = await _outcome(_users(app).change_role(stale, admin.id, Role.SHOPPER))
    assert _code(last) == "last-active-admin"
    assert _active_admins(clean_db.owner, acme) == {admin.id}
    assert _row(clean_db.owner, acme, seller2.id)[:2] == ("seller", "active")


# -- real concurrent requests through the app -------------------------------------------------


async def _patch_loop(client: httpx.AsyncClient, account: Account, count: int) -> list[int]:
    codes = []
    for i in range(count):
        response = await client.patch(
            "/api/v1/users/me", json={"display_name": f"Name {i}"}, headers=account.auth
        )
        codes.append(response.status_code)
    return codes


async def _admin_after(
    delay_patches: int, request: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response:
    for _ in range(delay_patches):
        await asyncio.sleep(0)
    return await request()


@pytest.mark.parametrize("action", ["demote", "deactivate"])
async def test_profile_edits_racing_an_admin_never_undo_the_admin(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, action: str
) -> None:
    acme = world["acme"]
    admin, target = acme["admin"], acme["seller"]
    for round_ in range(12):
        _set_user(clean_db.owner, acme, target.id, "admin", "active")
        if action == "deactivate":
            await login(client, target)  # the last round's deactivation ended its sessions

        def admin_request() -> Awaitable[httpx.Response]:
            if action == "demote":
                return client.put(
                    f"/api/v1/users/{target.id}/role", json={"role": "seller"}, headers=admin.auth
                )
            return client.post(f"/api/v1/users/{target.id}/deactivate", headers=admin.auth)

        # Even rounds start the admin's request first, odd rounds after a few edits are out.
        head_start = 0 if round_ % 2 == 0 else 1 + round_
        loops = [_patch_loop(client, target, 8) for _ in range(3)]
        admin_task = asyncio.create_task(_admin_after(head_start, admin_request))
        codes = await asyncio.gather(*loops)
        answer = await admin_task
        assert answer.status_code == 200, answer.text
        assert {c for loop in codes for c in loop} <= {200, 401}
        role, status, _, _ = _row(clean_db.owner, acme, target.id)
        if action == "demote":
            assert (role, status) == ("seller", "active"), f"round {round_}"
        else:
            assert (role, status) == ("admin", "deactivated"), f"round {round_}"
            assert _live_sessions(clean_db.owner, acme, target.id) == 0


async def test_password_changes_racing_a_demotion_never_undo_it(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    admin, target = acme["admin"], acme["seller"]
    passwords = [PASSWORD, NEW_PASSWORD]
    for round_ in range(4):
        _set_user(clean_db.owner, acme, target.id, "admin", "active")
        current, new = passwords[round_ % 2], passwords[(round_ + 1) % 2]
        change = client.post(
            "/api/v1/auth/password",
            json={"current_password": current, "new_password": new},
            headers=target.auth,
        )
        demote = client.put(
            f"/api/v1/users/{target.id}/role", json={"role": "seller"}, headers=admin.auth
        )
        pair = (change, demote) if round_ % 2 == 0 else (demote, change)
        first, second = await asyncio.gather(*pair)
        changed = first if round_ % 2 == 0 else second
        assert changed.status_code == 200, changed.text
        target.access_token = changed.json()["access_token"]
        assert _row(clean_db.owner, acme, target.id)[:2] == ("seller", "active"), round_


@pytest.mark.parametrize("action", ["demote", "deactivate"])
async def test_two_admins_removing_each_other_over_http_leave_exactly_one(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, action: str
) -> None:
    acme = world["acme"]
    a, b = acme["admin"], acme["seller"]
    for round_ in range(10):
        for who in (a, b):
            _set_user(clean_db.owner, acme, who.id, "admin", "active")
            if action == "deactivate" and round_ > 0:
                await login(client, who)

        def remove(actor: Account, target: Account) -> Awaitable[httpx.Response]:
            if action == "demote":
                return client.put(
                    f"/api/v1/users/{target.id}/role", json={"role": "seller"}, headers=actor.auth
                )
            return client.post(f"/api/v1/users/{target.id}/deactivate", headers=actor.auth)

        order = [(a, b), (b, a)] if round_ % 2 == 0 else [(b, a), (a, b)]
        answers = await asyncio.gather(*(remove(actor, target) for actor, target in order))
        codes = sorted(r.status_code for r in answers)
        # The loser is refused: 409 (last admin) when it got past authentication before the
        # winner committed; else 403 (no longer an admin) or 401 (its session ended).
        assert codes in ([200, 401], [200, 403], [200, 409]), [r.text for r in answers]
        for refused in (r for r in answers if r.status_code == 409):
            assert refused.json()["type"].endswith("/last-active-admin")
        assert len(_active_admins(clean_db.owner, acme)) == 1, f"round {round_}"


async def test_a_sole_admin_is_never_left_without_a_peer_by_a_race_with_a_third(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    """Three admins, each demoting the next at once: at least one stays, always."""
    acme = world["acme"]
    trio = [acme["admin"], acme["seller"], acme["seller2"]]
    for round_ in range(8):
        for who in trio:
            _set_user(clean_db.owner, acme, who.id, "admin", "active")
        pairs = [(trio[i], trio[(i + 1) % 3]) for i in range(3)]
        if round_ % 2:
            pairs.reverse()
        answers = await asyncio.gather(
            *(
                client.put(
                    f"/api/v1/users/{target.id}/role", json={"role": "seller"}, headers=actor.auth
                )
                for actor, target in pairs
            )
        )
        assert all(r.status_code in (200, 403, 409) for r in answers), [r.text for r in answers]
        survivors = _active_admins(clean_db.owner, acme)
        assert 1 <= len(survivors) <= 2, f"round {round_}"
        assert sum(r.status_code == 200 for r in answers) == 3 - len(survivors)
