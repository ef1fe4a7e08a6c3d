"""Session lifetimes: retried refreshes, refresh-token expiry, the absolute session lifetime,
and the purge of spent sessions and tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.service.sessions import Purged, SessionUpkeep
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform.database import Conninfos
from tests.support.pg import snapshot
from tests.support.world import Account, Tenant, login

pytestmark = pytest.mark.anyio


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    kind: str = response.json()["type"].rsplit("/", 1)[-1]
    return kind


Rows = list[tuple[Any, ...]]


def _sql(owner: str, tenant: Tenant, query: str, params: tuple[object, ...] = ()) -> Rows:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _sessions(owner: str, tenant: Tenant, user_id: uuid.UUID) -> Rows:
    return _sql(
        owner,
        tenant,
        "SELECT id, revoked_at IS NOT NULL, revoked_reason FROM auth_sessions"
        " WHERE user_id = %s ORDER BY created_at",
        (user_id,),
    )


async def _me(client: httpx.AsyncClient, access: str) -> int:
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    return response.status_code


# -- a retried refresh gets the same successor ---------------------------------------------------


@pytest.mark.parametrize("copies", [2, 5])
async def test_concurrent_refreshes_of_one_token_get_the_same_successor(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos, copies: int
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    answers = await asyncio.gather(
        *(_refresh(client, shopper.refresh_token) for _ in range(copies))
    )
    assert [a.status_code for a in answers] == [200] * copies, [a.text for a in answers]
    successors = {a.json()["refresh_token"] for a in answers}
    assert len(successors) == 1
    successor = successors.pop()
    assert successor != shopper.refresh_token
    for answer in answers:
        assert await _me(client, answer.json()["access_token"]) == 200
    # one session, still live, with exactly the original token (used) and its one successor
    sessions = _sessions(clean_db.owner, acme, shopper.id)
    assert [(revoked, reason) for _, revoked, reason in sessions] == [(False, None)]
    tokens = _sql(
        clean_db.owner,
        acme,
        "SELECT used_at IS NOT NULL FROM refresh_tokens WHERE session_id = %s ORDER BY issued_at",
        (sessions[0][0],),
    )
    assert tokens == [(True,), (False,)]
    # and the successor rotates on as usual
    onward = await _refresh(client, successor)
    assert onward.status_code == 200
    assert onward.json()["refresh_token"] not in (successor, shopper.refresh_token)


async def test_a_retry_within_the_grace_gets_the_same_successor_and_a_late_replay_revokes(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    first = await _refresh(client, shopper.refresh_token)
    retry = await _refresh(client, shopper.refresh_token)
    assert first.status_code == retry.status_code == 200
    assert retry.json()["refresh_token"] == first.json()["refresh_token"]
    assert 0 < retry.json()["refresh_expires_in"] <= first.json()["refresh_expires_in"]
    # the grace (10 s) has passed: the same token presented again is reuse
    _sql(
        clean_db.owner,
        acme,
        "UPDATE refresh_tokens SET used_at = used_at - interval '11 seconds'"
        " WHERE used_at IS NOT NULL",
    )
    late = await _refresh(client, shopper.refresh_token)
    assert late.status_code == 401
    assert _type(late) == "refresh-token-reused"
    assert [r[1:] for r in _sessions(clean_db.owner, acme, shopper.id)] == [
        (True, "refresh-token-reuse")
    ]
    assert (await _refresh(client, first.json()["refresh_token"])).status_code == 401
    assert await _me(client, first.json()["access_token"]) == 401


async def test_a_retry_after_the_successor_was_rotated_is_reuse(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    first = await _refresh(client, shopper.refresh_token)
    assert (await _refresh(client, first.json()["refresh_token"])).status_code == 200
    # within the grace, but its successor is already spent: no retry explains that
    replay = await _refresh(client, shopper.refresh_token)
    assert replay.status_code == 401
    assert _type(replay) == "refresh-token-reused"
    assert [r[1:] for r in _sessions(clean_db.owner, acme, shopper.id)] == [
        (True, "refresh-token-reuse")
    ]


# -- refresh-token expiry and the absolute session lifetime -------------------------------------


async def test_an_expired_refresh_token_answers_401_and_changes_nothing(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    _sql(
        clean_db.owner,
        acme,
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = %s",
        (shopper.id,),
    )
    before = snapshot(clean_db.owner)
    response = await _refresh(client, shopper.refresh_token)
    assert response.status_code == 401
    assert _type(response) == "invalid-token"
    assert snapshot(clean_db.owner) == before
    # the session itself was not touched: its access token still works
    assert (await client.get("/api/v1/users/me", headers=shopper.auth)).status_code == 200


async def test_a_session_gets_an_absolute_end_that_refreshing_never_moves(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    (created, ends), *_ = _sql(
        clean_db.owner,
        acme,
        "SELECT created_at, expires_at FROM auth_sessions WHERE user_id = %s",
        (shopper.id,),
    )
    assert ends - created == timedelta(days=30)
    # near its end, a rotated refresh token lives only as long as the session
    _sql(
        clean_db.owner,
        acme,
        "UPDATE auth_sessions SET expires_at = now() + interval '1 hour' WHERE user_id = %s",
        (shopper.id,),
    )
    rotated = await _refresh(client, shopper.refresh_token)
    assert rotated.status_code == 200
    assert 3500 < rotated.json()["refresh_expires_in"] <= 3600
    rows = _sql(
        clean_db.owner,
        acme,
        "SELECT r.expires_at = s.expires_at FROM refresh_tokens r JOIN auth_sessions s"
        " ON s.id = r.session_id WHERE r.user_id = %s AND r.used_at IS NULL",
        (shopper.id,),
    )
    assert rows == [(True,)]


async def test_refreshing_after_the_session_lifetime_answers_401_and_ends_the_session(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme = world["acme"]
    shopper = acme["shopper"]
    _sql(
        clean_db.owner,
        acme,
        "UPDATE auth_sessions SET created_at = created_at - interval '31 days',"
        " expires_at = now() - interval '1 second' WHERE user_id = %s",
        (shopper.id,),
    )
    response = await _refresh(client, shopper.refresh_token)
    assert response.status_code == 401
    assert _type(response) == "invalid-token"
    assert [r[1:] for r in _sessions(clean_db.owner, acme, shopper.id)] == [
        (True, "session-expired")
    ]
    assert (await client.get("/api/v1/users/me", headers=shopper.auth)).status_code == 401
    # signing in again starts a new session
    again = await login(client, Account(shopper.id, shopper.email, "shopper", "acme"))
    assert (await client.get("/api/v1/users/me", headers=again.auth)).status_code == 200


# -- the purge ----------------------------------------------------------------------------------


async def test_the_purge_deletes_only_spent_tokens_and_long_ended_sessions(
    app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: Conninfos
) -> None:
    acme, globex = world["acme"], world["globex"]
    owner = clean_db.owner
    seller, shopper, admin = acme["seller"], acme["shopper"], acme["admin"]
    # seller: a live session whose first token was used (and whose successor is live)
    assert (await _refresh(client, seller.refresh_token)).status_code == 200
    # shopper: a session logged out 8 days ago
    assert (await client.post("/api/v1/auth/logout", headers=shopper.auth)).status_code == 204
    _sql(
        owner,
        acme,
        "UPDATE auth_sessions SET revoked_at = now() - interval '8 days' WHERE user_id = %s",
        (shopper.id,),
    )
    # admin: a session logged out only yesterday, and one that ran out 8 days ago
    second = await login(client, Account(admin.id, admin.email, "admin", "acme"))
    assert (await client.post("/api/v1/auth/logout", headers=admin.auth)).status_code == 204
    _sql(
        owner,
        acme,
        "UPDATE auth_sessions SET revoked_at = now() - interval '1 day'"
        " WHERE user_id = %s AND revoked_at IS NOT NULL",
        (admin.id,),
    )
    _sql(
        owner,
        acme,
        "UPDATE auth_sessions SET created_at = now() - interval '40 days',"
        " expires_at = now() - interval '8 days'"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (admin.id,),
    )
    _sql(
        owner,
        acme,
        "UPDATE refresh_tokens SET issued_at = now() - interval '40 days',"
        " expires_at = now() - interval '8 days'"
        " WHERE session_id IN (SELECT id FROM auth_sessions WHERE expires_at < now())",
    )
    # seller2: a live session with one token that expired 8 days ago beside a live one
    seller2 = acme["seller2"]
    _sql(
        owner,
        acme,
        "INSERT INTO refresh_tokens (tenant_id, id, session_id, user_id, token_hash, issued_at,"
        " expires_at, used_at) SELECT tenant_id, gen_random_uuid(), id, user_id, %s,"
        " now() - interval '30 days', now() - interval '8 days', now() - interval '20 days'"
        " FROM auth_sessions WHERE user_id = %s",
        (b"old-token-digest", seller2.id),
    )
    globex_before = snapshot(owner)
    database: Database = app.state.database
    upkeep = SessionUpkeep(
        lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id), SystemClock()
    )

    assert await upkeep.purge(acme.id) == Purged(refresh_tokens=3, sessions=2)

    left = _sql(
        owner,
        acme,
        "SELECT u.email, s.revoked_at IS NOT NULL, count(r.id), count(r.used_at)"
        " FROM auth_sessions s JOIN users u ON u.id = s.user_id"
        " LEFT JOIN refresh_tokens r ON r.session_id = s.id"
        ' GROUP BY u.email, s.id ORDER BY u.email COLLATE "C", 2',
    )
    assert left == [
        ("admin@acme.example", True, 1, 0),  # ended yesterday: kept for now
        ("seller2@acme.example", False, 1, 0),
        ("seller@acme.example", False, 2, 1),  # a used token stays until it expires
    ]
    # the other marketplace is untouched, and the survivors still work
    after = snapshot(owner)
    for table in ("auth_sessions", "refresh_tokens"):
        assert [r for r in after[table] if r[0] == globex.id] == [
            r for r in globex_before[table] if r[0] == globex.id
        ]
    assert (await client.get("/api/v1/users/me", headers=seller2.auth)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=second.auth)).status_code == 401
    # a second run finds nothing more
    assert await upkeep.purge(acme.id) == Purged(refresh_tokens=0, sessions=0)
