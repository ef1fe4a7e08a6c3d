"""Sign-in limits under test: a policy and a clock the test chooses, so time moves on request
instead of by sleeping, over the real counter table."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from fastapi import FastAPI

from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.device_tokens import HmacDeviceTokenCodec
from impextech.identity.adapters.jwt_tokens import JwtAccessTokenCodec
from impextech.identity.adapters.rate_limit import attempt_key
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.service.auth import AuthPolicy, AuthService
from impextech.identity.service.ports import PasswordHasher
from impextech.kernel.db import Database
from impextech.platform import database
from impextech.platform.app import create_app
from tests.conftest import TEST_SECRET, make_settings
from tests.support.world import Tenant

SECRET = TEST_SECRET.encode()
PROBLEM = "https://impextech.example/problems/"


@dataclass
class ManualClock:
    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class FakeHasher:
    """Instant hashes for service-level tests that make thousands of attempts."""

    async def hash(self, password: str) -> str:
        return "fake$" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "fake$" + password

    async def burn(self, password: str) -> None:
        return None

    def needs_rehash(self, password_hash: str) -> bool:
        return False


def service(
    db: Database, clock: ManualClock, policy: AuthPolicy, hasher: PasswordHasher
) -> AuthService:
    key = attempt_key(SECRET)
    return AuthService(
        uow=lambda tenant_id: SqlIdentityUnitOfWork(db, tenant_id, key),
        hasher=hasher,
        tokens=JwtAccessTokenCodec(SECRET, 900),
        clock=clock,
        policy=policy,
        devices=HmacDeviceTokenCodec(SECRET),
    )


@dataclass
class PolicyApp:
    app: FastAPI
    clock: ManualClock
    stack: AsyncExitStack

    async def client(self, address: str, *, https: bool = False) -> httpx.AsyncClient:
        """A client per source address (each keeps its own cookies, as a browser would)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40_000))
        base_url = "https://testserver" if https else "http://testserver"
        return await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=base_url)
        )


@asynccontextmanager
async def policy_app(
    conninfos: database.Conninfos, tmp_path: Path, policy: AuthPolicy
) -> AsyncIterator[PolicyApp]:
    """The real app, with sign-in under ``policy`` and a manual clock."""
    app = create_app(make_settings(tmp_path), conninfos.app)
    clock = ManualClock()
    hasher = Argon2PasswordHasher(2)
    auth = service(app.state.database, clock, policy, hasher)
    app.state.identity = replace(app.state.identity, auth=auth)
    try:
        async with AsyncExitStack() as stack:
            yield PolicyApp(app, clock, stack)
    finally:
        await app.state.database.dispose()
        hasher.close()


async def login(
    client: httpx.AsyncClient, email: str, password: str, tenant: str = "acme"
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Tenant": tenant},
    )


def assert_limited(response: httpx.Response, path: str = "/api/v1/auth/login") -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    seconds = int(response.headers["retry-after"])
    assert response.json() == {
        "type": PROBLEM + "rate-limited",
        "title": "Too many attempts",
        "status": 429,
        "detail": f"Too many attempts; retry in {seconds} s",
        "instance": path,
    }
    return seconds


def add_user(owner: str, tenant: Tenant, email: str, password_hash: str) -> str:
    """One more active shopper in ``tenant``."""
    now = datetime.now(UTC)
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO users (tenant_id, id, email, display_name, role, status,"
            " password_hash, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'Person', 'shopper', 'active', %s, %s, %s)",
            (tenant.id, uuid.uuid4(), email, password_hash, now, now),
        )
    return email


def add_users(owner: str, tenant: Tenant, count: int, password_hash: str) -> list[str]:
    """``count`` more active shoppers in ``tenant``; their emails."""
    return [
        add_user(owner, tenant, f"person{n}@{tenant.slug}.example", password_hash)
        for n in range(count)
    ]


def sessions_of(owner: str, tenant: Tenant) -> int:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute("SELECT count(*) FROM auth_sessions").fetchone()
    assert row is not None
    return int(row[0])
