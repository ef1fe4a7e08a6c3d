"""Sign-in, sign-up and password-change limits over HTTP, with tight budgets and a clock the
test moves. Sign-in and password change count failures only; sign-up counts every attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from impextech.identity.service.auth import AuthPolicy, RateLimit, SignInBackoff
from impextech.platform import database
from tests.support.pg import snapshot
from tests.support.sign_in import PolicyApp, assert_limited, login, policy_app, sessions_of
from tests.support.world import PASSWORD, Tenant, make_tenant

pytestmark = pytest.mark.anyio

TIGHT = AuthPolicy(
    per_address=RateLimit(3, 900),
    per_account=RateLimit(3, 900),
    per_device=RateLimit(3, 900),
    backoff=SignInBackoff(free=100),  # out of the way: tested in test_sign_in_policy
    sign_ups_per_address=RateLimit(3, 900),
    password_failures=RateLimit(3, 900),
)
WRONG = "not-the-password-at-all"


@pytest.fixture
async def web(clean_db: database.Conninfos, tmp_path: Path) -> AsyncIterator[PolicyApp]:
    async with policy_app(clean_db, tmp_path, TIGHT) as app:
        yield app


@pytest.fixture
def acme(clean_db: database.Conninfos) -> Tenant:
    return make_tenant(clean_db.owner, "acme")


async def test_successful_sign_ins_from_one_address_are_not_limited(
    web: PolicyApp, acme: Tenant
) -> None:
    client = await web.client("203.0.113.50")
    for _ in range(3):
        for who in ("admin", "seller", "seller2", "shopper"):
            response = await login(client, acme[who].email, PASSWORD)
            assert response.status_code == 200, response.text


async def test_the_fourth_failure_from_one_address_is_refused(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await web.client("203.0.113.50")
    # Three different accounts, so only the per-address limit can trip.
    for who in ("admin", "seller", "seller2"):
        assert (await login(client, acme[who].email, WRONG)).status_code == 401
    before = snapshot(clean_db.owner)

    refused = await login(client, acme["shopper"].email, PASSWORD)

    assert assert_limited(refused) == 900
    assert snapshot(clean_db.owner) == before
    assert sessions_of(clean_db.owner, acme) == 0
    # Another machine signs the same account in without trouble...
    elsewhere = await web.client("203.0.113.51")
    assert (await login(elsewhere, acme["shopper"].email, PASSWORD)).status_code == 200
    # ...and the first one may try again when its window ends.
    web.clock.advance(899)
    assert assert_limited(await login(client, acme["shopper"].email, PASSWORD)) == 1
    web.clock.advance(1)
    assert (await login(client, acme["shopper"].email, PASSWORD)).status_code == 200


async def test_the_fourth_failure_on_one_account_is_refused_from_any_address(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    victim = acme["admin"].email  # has an "i" for U+0130 below
    for n in range(3):
        client = await web.client(f"198.51.100.{n + 1}")
        wrong = await login(client, victim, WRONG)
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["type"] == "https://impextech.example/problems/invalid-credentials"
    fourth = await web.client("198.51.100.4")
    before = snapshot(clean_db.owner)

    # Even the right password, from a client that never signed in to this account.
    refused = await login(fourth, victim, PASSWORD)

    assert_limited(refused)
    assert snapshot(clean_db.owner) == before
    # Any spelling the look-up accepts is the same account.
    for spelling in (victim.upper(), f"  {victim}", victim.replace("i", "\u0130")):
        assert_limited(await login(fourth, spelling, PASSWORD))
    # Another account from the very same address still works.
    other = await login(fourth, acme["shopper"].email, PASSWORD)
    assert other.status_code == 200, other.text
    assert sessions_of(clean_db.owner, acme) == 1


async def test_a_success_gives_its_attempt_back(web: PolicyApp, acme: Tenant) -> None:
    client = await web.client("198.51.100.9")
    email = acme["seller"].email
    for _ in range(10):
        assert (await login(client, email, WRONG)).status_code == 401
        assert (await login(client, email, WRONG)).status_code == 401
        assert (await login(client, email, PASSWORD)).status_code == 200
        web.clock.advance(900)  # two failures per window: never three


async def login_from(web: PolicyApp, address: str, email: str, password: str) -> int:
    client = await web.client(address)
    return (await login(client, email, password)).status_code


async def test_ipv6_clients_are_counted_per_64_and_ipv4_clients_per_address(
    web: PolicyApp, acme: Tenant
) -> None:
    emails = [f"nobody{n}@acme.example" for n in range(8)]
    # Three failures from three addresses of one /64 spend that network's budget.
    for n, host in enumerate(("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9")):
        assert await login_from(web, host, emails[n], WRONG) == 401
    assert await login_from(web, "2001:db8:1:2:abcd::1", acme["admin"].email, PASSWORD) == 429
    # The next /64 is another subscriber.
    assert await login_from(web, "2001:db8:1:3::1", acme["admin"].email, PASSWORD) == 200
    # IPv4 neighbours are not one network; an IPv4-mapped IPv6 peer is its IPv4 address.
    for n in range(3):
        assert await login_from(web, "192.0.2.1", emails[3 + n], WRONG) == 401
    assert await login_from(web, "::ffff:192.0.2.1", acme["seller"].email, PASSWORD) == 429
    assert await login_from(web, "192.0.2.2", acme["seller"].email, PASSWORD) == 200


async def test_sign_ups_are_limited_per_address(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await web.client("192.0.2.77")

    async def register(email: str) -> int:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "New"},
            headers={"X-Tenant": "acme"},
        )
        return response.status_code

    assert [await register(f"new{n}@acme.example") for n in range(3)] == [201, 201, 201]
    before = snapshot(clean_db.owner)

    refused = await client.post(
        "/api/v1/auth/register",
        json={"email": "new3@acme.example", "password": PASSWORD, "display_name": "New"},
        headers={"X-Tenant": "acme"},
    )

    assert_limited(refused, "/api/v1/auth/register")
    assert snapshot(clean_db.owner) == before
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(acme.id),))
        emails = conn.execute(
            "SELECT email FROM users WHERE email LIKE 'new%%' ORDER BY email"
        ).fetchall()
    assert emails == [("new0@acme.example",), ("new1@acme.example",), ("new2@acme.example",)]
    web.clock.advance(900)
    assert await register("new3@acme.example") == 201


async def test_wrong_current_passwords_are_limited_per_account(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await web.client("192.0.2.90")
    signed_in = await login(client, acme["shopper"].email, PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    auth = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    wrong = {"current_password": "wrong-current-password", "new_password": "a-new-passphrase-77"}
    for _ in range(3):
        response = await client.post("/api/v1/auth/password", json=wrong, headers=auth)
        assert response.status_code == 401, response.text
    before = snapshot(clean_db.owner)

    refused = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-passphrase-77"},
        headers=auth,
    )

    assert_limited(refused, "/api/v1/auth/password")
    assert snapshot(clean_db.owner) == before
    # The password did not change, and sign-in has budgets of its own.
    elsewhere = await web.client("192.0.2.91")
    assert (await login(elsewhere, acme["shopper"].email, PASSWORD)).status_code == 200


async def test_a_right_current_password_is_not_a_failure(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    client = await web.client("192.0.2.92")
    signed_in = await login(client, acme["shopper"].email, PASSWORD)
    auth = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    weak = {"current_password": PASSWORD, "new_password": "password"}
    for _ in range(5):  # refused for the new password, but the current one was right
        response = await client.post("/api/v1/auth/password", json=weak, headers=auth)
        assert response.status_code == 422, response.text
    strong = {"current_password": PASSWORD, "new_password": "a-new-passphrase-77"}
    changed = await client.post("/api/v1/auth/password", json=strong, headers=auth)
    assert changed.status_code == 200, changed.text
