"""Global on purpose is not a channel: the rate-limit counters (a global table) are keyed per
tenant for accounts, so failed sign-ins in one marketplace never lock an account out of another."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from impextech.platform import database
from impextech.platform.app import create_app
from tests.conftest import make_settings
from tests.support.world import PASSWORD, make_tenant

pytestmark = pytest.mark.anyio


async def test_failed_sign_ins_in_b_do_not_lock_a_out(
    clean_db: database.Conninfos, tmp_path: Path
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    make_tenant(clean_db.owner, "globex")
    victim = acme["seller"]
    app = create_app(
        make_settings(
            tmp_path,
            IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT="3/900",
            IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS="3/900",
        ),
        clean_db.app,
    )

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    try:
        async with client("198.51.100.1") as attacker, client("198.51.100.2") as bystander:
            wrong = {"email": victim.email, "password": "not the password at all"}
            statuses = [
                (
                    await attacker.post(
                        "/api/v1/auth/login", json=wrong, headers={"X-Tenant": "globex"}
                    )
                ).status_code
                for _ in range(4)
            ]
            assert statuses == [401, 401, 401, 429]
            # The same address in globex from elsewhere: the account counter there is spent...
            again = await bystander.post(
                "/api/v1/auth/login", json=wrong, headers={"X-Tenant": "globex"}
            )
            assert again.status_code == 429, again.text
            # ...but it is globex's counter: in acme the account signs in.
            right = {"email": victim.email, "password": PASSWORD}
            signed_in = await bystander.post(
                "/api/v1/auth/login", json=right, headers={"X-Tenant": "acme"}
            )
            assert signed_in.status_code == 200, signed_in.text
    finally:
        await app.state.database.dispose()
