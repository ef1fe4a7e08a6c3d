"""Password reset over HTTP: ask → mail job → message in the file outbox → confirm.

The reset routes and the mail job are wired here as the platform wires them, with a clock the
tests move and a file outbox in the test's directory.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.rows import dict_row

from impextech.identity.adapters.mail_job import SEND_MAIL, send_mail_handler
from impextech.identity.adapters.mailers import FileOutboxMailer
from impextech.identity.adapters.password_reset_http import router as reset_router
from impextech.identity.adapters.password_reset_sql import SqlPasswordResetUnitOfWork
from impextech.identity.domain.password_reset import decode_seed, reset_token
from impextech.identity.service.password_reset import (
    PasswordResetMail,
    PasswordResetService,
    ResetPolicy,
)
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.adapters.scheduling import JobScheduling
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform.app import create_app
from impextech.platform.database import Conninfos
from tests.conftest import TEST_SECRET, make_settings
from tests.support.jobs import running_worker, wait_for
from tests.support.pg import snapshot
from tests.support.world import PASSWORD, Tenant, login, make_tenant

pytestmark = pytest.mark.anyio

ACME = {"X-Tenant": "acme"}
NEW_PASSWORD = "violet harbour compass 73"
LINK_BASE = "https://shop.example/reset-password"
SENDER = "Impextech <no-reply@shop.example>"


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Rig:
    app: FastAPI
    client: httpx.AsyncClient
    db: Conninfos
    acme: Tenant
    clock: MovableClock
    outbox: Path
    queue: ProcrastinateQueue
    key: bytes = TEST_SECRET.encode()
    sent: list[Message] = field(default_factory=list)

    async def ask(self, address: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/password-reset", json={"email": address}, headers=ACME
        )

    async def confirm(self, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": password},
        )

    async def deliver(self) -> list[dict[str, Any]]:
        """Run a real worker until every queued mail job has finished; their rows."""
        database = Database.connect(self.db.app, size=2)
        mail = PasswordResetMail(
            lambda t: SqlPasswordResetUnitOfWork(
                database, t, JobScheduling(self.queue, self.clock)
            ),
            FileOutboxMailer(self.outbox, SENDER),
            self.clock,
            self.key,
            LINK_BASE,
        )
        runtime = JobRuntime(
            database, self.queue, {SEND_MAIL: send_mail_handler(mail)}, clock=SystemClock()
        )
        jobs = mail_jobs(self.db, self.acme.id)
        async with running_worker(runtime, (("urgent", 2),)):
            return [
                await wait_for(self.db.owner, self.acme.id, job["id"], {"succeeded"})
                for job in jobs
            ]

    def messages(self) -> list[Path]:
        return sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []


def mail_jobs(db: Conninfos, tenant_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(db.owner, row_factory=dict_row) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        return conn.execute(
            "SELECT * FROM jobs WHERE kind = %s ORDER BY created_at", (SEND_MAIL.name,)
        ).fetchall()


def reset_rows(db: Conninfos, tenant_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(db.owner, row_factory=dict_row) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        return conn.execute("SELECT * FROM password_reset_tokens ORDER BY created_at").fetchall()


def whole_database_text(db: Conninfos, tenant_id: UUID) -> str:
    """Every row the tenant can see, and the job library's queue, as one text."""
    with psycopg.connect(db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        parts = [
            str(conn.execute(f"SELECT array_agg(t::text) FROM {table} t").fetchone())  # noqa: S608
            for table in ("users", "password_reset_tokens", "jobs", "procrastinate_jobs")
        ]
    return "\n".join(parts)


def token_in(message: Message) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(
        re.escape(LINK_BASE) + r"\?token=([0-9a-f]{32}\.[A-Za-z0-9_-]{43})\b", body.decode()
    )
    assert found is not None, body
    return found.group(1)


@pytest.fixture
async def rig(clean_db: Conninfos, tmp_path: Path) -> AsyncIterator[Rig]:
    app = create_app(make_settings(tmp_path), clean_db.app)
    clock = MovableClock()
    queue = ProcrastinateQueue(clean_db.app, [SEND_MAIL], pool_size=2)
    database: Database = app.state.database
    app.state.password_reset = PasswordResetService(
        lambda t: SqlPasswordResetUnitOfWork(database, t, JobScheduling(queue, clock)),
        app.state.identity.auth._hasher,
        clock,
        TEST_SECRET.encode(),
        ResetPolicy(per_address=(1000, 3600), per_account=(3, 3600)),
    )
    app.include_router(reset_router)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4444))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            acme = make_tenant(clean_db.owner, "acme")
            yield Rig(app, client, clean_db, acme, clock, tmp_path / "outbox", queue)
    finally:
        await database.dispose()


async def test_the_whole_flow_resets_the_password_and_ends_every_session(rig: Rig) -> None:
    shopper = rig.acme["shopper"]
    first = await login(rig.client, shopper)
    first_access, first_refresh = first.access_token, first.refresh_token
    await login(rig.client, shopper)  # a second session

    asked = await rig.ask(shopper.email)

    assert asked.status_code == 202, asked.text
    assert asked.json() == {
        "status": "accepted",
        "detail": "If this address has an account in this marketplace, a reset link is on its way.",
    }
    [row] = reset_rows(rig.db, rig.acme.id)
    assert row["user_id"] == shopper.id
    assert row["used_at"] is None
    assert row["expires_at"] - row["created_at"] == timedelta(minutes=30)
    [job] = mail_jobs(rig.db, rig.acme.id)
    assert job["created_by"] is None
    assert set(job["payload"]) == {"template", "reset_id", "seed"}
    assert job["payload"]["reset_id"] == str(row["id"])
    assert shopper.email not in str(job["payload"])
    assert rig.messages() == []  # nothing is sent on the request path

    [done] = await rig.deliver()

    assert done["result"] == {"template": "password-reset", "sent": True}
    [path] = rig.messages()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    message = email.message_from_bytes(path.read_bytes())
    assert message["To"] == shopper.email
    assert message["From"] == SENDER
    assert message["Subject"] == "Reset your password"
    token = token_in(message)
    assert hashlib.sha256(token.encode()).digest() == bytes(row["token_hash"])
    # The link exists nowhere in the database: neither the token nor anything in the queue.
    stored = whole_database_text(rig.db, rig.acme.id)
    assert token not in stored
    assert token.split(".")[1] not in stored

    weak = snapshot(rig.db.owner)
    refused = await rig.confirm(token, "password1234")
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/weak-password")
    assert snapshot(rig.db.owner) == weak  # refused: nothing changed, the token still works

    confirmed = await rig.confirm(token)

    assert confirmed.status_code == 204, confirmed.text
    old = await rig.client.post(
        "/api/v1/auth/login", json={"email": shopper.email, "password": PASSWORD}, headers=ACME
    )
    assert old.status_code == 401
    me = await rig.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {first_access}"}
    )
    assert me.status_code == 401
    refreshed = await rig.client.post("/api/v1/auth/refresh", json={"refresh_token": first_refresh})
    assert refreshed.status_code == 401
    with psycopg.connect(rig.db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(rig.acme.id),))
        sessions = conn.execute(
            "SELECT revoked_reason FROM auth_sessions WHERE user_id = %s", (shopper.id,)
        ).fetchall()
    assert sorted(r[0] for r in sessions) == ["password-reset", "password-reset"]
    [used] = reset_rows(rig.db, rig.acme.id)
    assert used["used_at"] is not None
    new = await rig.client.post(
        "/api/v1/auth/login", json={"email": shopper.email, "password": NEW_PASSWORD}, headers=ACME
    )
    assert new.status_code == 200, new.text

    before = snapshot(rig.db.owner)
    again = await rig.confirm(token, "another fresh passphrase 9")
    assert again.status_code == 400
    assert again.json()["type"].endswith("/invalid-reset-token")
    assert snapshot(rig.db.owner) == before


async def test_an_unknown_address_gets_the_same_answer_and_nothing_happens(rig: Rig) -> None:
    known = await rig.ask(rig.acme["seller"].email)
    before = snapshot(rig.db.owner)

    unknown = await rig.ask("nobody@acme.example")

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert set(unknown.headers) == set(known.headers)
    assert snapshot(rig.db.owner) == before
    assert len(mail_jobs(rig.db, rig.acme.id)) == 1  # the known address's only
    await rig.deliver()
    assert len(rig.messages()) == 1


async def test_an_expired_link_is_neither_sent_nor_accepted(rig: Rig) -> None:
    assert (await rig.ask(rig.acme["shopper"].email)).status_code == 202
    [job] = mail_jobs(rig.db, rig.acme.id)
    # Only the secret key's holder can turn the job's seed into the token; the test holds it.
    token = reset_token(rig.key, rig.acme.id, decode_seed(job["payload"]["seed"]))
    rig.clock.offset = timedelta(minutes=31)

    [done] = await rig.deliver()
    before = snapshot(rig.db.owner)
    refused = await rig.confirm(token)

    assert done["result"] == {"template": "password-reset", "sent": False}
    assert rig.messages() == []
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-reset-token")
    assert snapshot(rig.db.owner) == before


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        f"{UUID(int=7).hex}.{'A' * 43}",  # no such marketplace
        f"{'0' * 32}.{'A' * 43}",
    ],
)
async def test_malformed_and_unknown_tokens_get_one_answer(rig: Rig, token: str) -> None:
    before = snapshot(rig.db.owner)
    refused = await rig.confirm(token)
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-reset-token")
    assert snapshot(rig.db.owner) == before


async def test_an_unknown_token_of_a_real_marketplace_is_refused(rig: Rig) -> None:
    before = snapshot(rig.db.owner)
    refused = await rig.confirm(reset_token(rig.key, rig.acme.id, b"\x01" * 32))
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-reset-token")
    assert snapshot(rig.db.owner) == before


async def test_asking_is_rate_limited_per_account_whether_or_not_it_exists(rig: Rig) -> None:
    for address in (rig.acme["admin"].email, "ghost@acme.example"):
        answers = [(await rig.ask(address)).status_code for _ in range(4)]
        assert answers == [202, 202, 202, 429], address
    assert len(reset_rows(rig.db, rig.acme.id)) == 3


async def test_two_confirmations_racing_with_one_token_one_wins(rig: Rig) -> None:
    shopper = rig.acme["shopper"]
    assert (await rig.ask(shopper.email)).status_code == 202
    await rig.deliver()
    token = token_in(email.message_from_bytes(rig.messages()[0].read_bytes()))
    passwords = ["first racing passphrase 1", "second racing passphrase 2"]

    answers = await asyncio.gather(*(rig.confirm(token, p) for p in passwords))

    statuses = [a.status_code for a in answers]
    assert sorted(statuses) == [204, 400]
    winner = passwords[statuses.index(204)]
    for password, expected in ((winner, 200), (next(p for p in passwords if p != winner), 401)):
        signin = await rig.client.post(
            "/api/v1/auth/login", json={"email": shopper.email, "password": password}, headers=ACME
        )
        assert signin.status_code == expected


async def test_a_newer_reset_retires_the_older_link_once_used(rig: Rig) -> None:
    shopper = rig.acme["shopper"]
    for _ in range(2):
        assert (await rig.ask(shopper.email)).status_code == 202
    await rig.deliver()
    older, newer = (token_in(email.message_from_bytes(p.read_bytes())) for p in rig.messages())

    assert (await rig.confirm(newer)).status_code == 204
    stale = await rig.confirm(older, "yet another passphrase 5")

    assert stale.status_code == 400
    assert all(r["used_at"] is not None for r in reset_rows(rig.db, rig.acme.id))
