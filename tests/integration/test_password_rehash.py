"""Sign-in brings a hash made with older argon2 parameters up to the current ones.

The new hash is written by compare-and-set, so a password change that lands between the
verify and the write wins over the rehash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher as Argon2
from argon2 import Type
from fastapi import FastAPI

from impextech.identity.adapters.argon2_hasher import owasp_argon2
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.service.ports import PasswordHasher
from impextech.kernel.db import Database
from impextech.platform.database import Conninfos
from tests.support.world import PASSWORD, Tenant, make_tenant, password_hash

pytestmark = pytest.mark.anyio

ACME = {"X-Tenant": "acme"}
# What an older release might have used: fewer passes, less memory.
OLD_PARAMETERS = Argon2(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)


def stored_hash(db: Conninfos, tenant: Tenant, user_id: UUID) -> str:
    with psycopg.connect(db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute("SELECT password_hash FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def set_hash(db: Conninfos, tenant: Tenant, user_id: UUID, value: str) -> None:
    with psycopg.connect(db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (value, user_id))


async def sign_in(client: httpx.AsyncClient, address: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/login", json={"email": address, "password": password}, headers=ACME
    )
    return response.status_code


async def test_an_old_hash_is_replaced_at_sign_in(
    client: httpx.AsyncClient, clean_db: Conninfos
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    shopper = acme["shopper"]
    old = OLD_PARAMETERS.hash(PASSWORD)
    set_hash(clean_db, acme, shopper.id, old)
    current = owasp_argon2()
    assert current.check_needs_rehash(old)

    assert await sign_in(client, shopper.email, PASSWORD) == 200

    new = stored_hash(clean_db, acme, shopper.id)
    assert new != old
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not current.check_needs_rehash(new)
    assert current.verify(new, PASSWORD)
    assert await sign_in(client, shopper.email, PASSWORD) == 200
    assert stored_hash(clean_db, acme, shopper.id) == new  # current hashes are left alone


async def test_a_failed_sign_in_does_not_rehash(
    client: httpx.AsyncClient, clean_db: Conninfos
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    old = OLD_PARAMETERS.hash(PASSWORD)
    set_hash(clean_db, acme, acme["seller"].id, old)

    assert await sign_in(client, acme["seller"].email, "not the password at all") == 401

    assert stored_hash(clean_db, acme, acme["seller"].id) == old


async def test_a_current_hash_is_not_rewritten(
    client: httpx.AsyncClient, clean_db: Conninfos
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    assert await sign_in(client, acme["admin"].email, PASSWORD) == 200
    assert stored_hash(clean_db, acme, acme["admin"].id) == password_hash()


class ChangeLandsDuringRehash:
    """Plays a password change that commits while sign-in is computing the new hash."""

    def __init__(self, real: PasswordHasher, land: str, db: Conninfos, tenant: Tenant) -> None:
        self.real, self.land, self.db, self.tenant = real, land, db, tenant
        self.user_id: UUID | None = None

    async def hash(self, password: str) -> str:
        assert self.user_id is not None
        set_hash(self.db, self.tenant, self.user_id, self.land)
        return await self.real.hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self.real.verify(password_hash, password)

    async def burn(self, password: str) -> None:
        await self.real.burn(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.real.needs_rehash(password_hash)


async def test_a_password_change_during_the_rehash_wins(
    app: FastAPI, client: httpx.AsyncClient, clean_db: Conninfos
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    shopper = acme["shopper"]
    set_hash(clean_db, acme, shopper.id, OLD_PARAMETERS.hash(PASSWORD))
    changed = owasp_argon2().hash("the password set meanwhile 77")
    auth = app.state.identity.auth
    racer = ChangeLandsDuringRehash(auth._hasher, changed, clean_db, acme)
    racer.user_id = shopper.id
    auth._hasher = racer

    assert await sign_in(client, shopper.email, PASSWORD) == 200

    assert stored_hash(clean_db, acme, shopper.id) == changed


async def test_replace_password_hash_is_compare_and_set(clean_db: Conninfos) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    user_id = acme["seller"].id
    database = Database.connect(clean_db.app, size=1)
    now = datetime.now(UTC)
    try:
        async with SqlIdentityUnitOfWork(database, acme.id) as uow:
            stale = await uow.users.replace_password_hash(user_id, "not-the-hash", "new-1", now)
            await uow.commit()
        assert stale is False
        assert stored_hash(clean_db, acme, user_id) == password_hash()

        async with SqlIdentityUnitOfWork(database, acme.id) as uow:
            swapped = await uow.users.replace_password_hash(user_id, password_hash(), "new-2", now)
            await uow.commit()
        assert swapped is True
        assert stored_hash(clean_db, acme, user_id) == "new-2"

        # Another marketplace's unit of work cannot touch the row, even with the right hash.
        globex = make_tenant(clean_db.owner, "globex")
        async with SqlIdentityUnitOfWork(database, globex.id) as uow:
            crossed = await uow.users.replace_password_hash(user_id, "new-2", "new-3", now)
            await uow.commit()
        assert crossed is False
        assert stored_hash(clean_db, acme, user_id) == "new-2"
    finally:
        await database.dispose()
