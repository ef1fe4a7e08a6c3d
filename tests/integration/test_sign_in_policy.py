"""The sign-in policy from both sides (docs/sign-in-limits.md).

The attacker's side runs the use case with an instant hasher (thousands of guesses, each
retried the moment Retry-After allows, on a clock the test moves): how many guesses an hour
the default policy gives per account and per address. The owner's side runs over HTTP with
the real hasher: the owner's browser signs in while strangers hammer the account, and an
office of thirty behind one address all sign in.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impextech.identity.adapters.device_tokens import HmacDeviceTokenCodec
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.domain.errors import InvalidCredentials
from impextech.identity.service.auth import AuthPolicy, AuthService, RateLimit
from impextech.identity.service.ports import DeviceClaim
from impextech.kernel.db import Database
from impextech.kernel.domain.errors import RateLimited
from impextech.platform import database
from tests.support.pg import snapshot
from tests.support.sign_in import (
    SECRET,
    FakeHasher,
    ManualClock,
    PolicyApp,
    add_user,
    add_users,
    assert_limited,
    login,
    policy_app,
    service,
    sessions_of,
)
from tests.support.world import PASSWORD, Tenant, make_tenant, password_hash

pytestmark = pytest.mark.anyio

DEFAULTS = AuthPolicy()
HOUR = timedelta(hours=1)
DEVICE_COOKIE = "impextech_device"


def addresses(prefix: str = "198.18") -> Iterator[str]:
    for n in itertools.count():
        yield f"{prefix}.{n // 250}.{n % 250 + 1}"


@dataclass
class Attacked:
    db: Database
    auth: AuthService
    clock: ManualClock
    tenant: Tenant
    emails: list[str]


@pytest.fixture
async def attacked(clean_db: database.Conninfos) -> AsyncIterator[Attacked]:
    tenant = make_tenant(clean_db.owner, "acme")
    emails = add_users(clean_db.owner, tenant, 3, "fake$" + PASSWORD)
    db = Database.connect(clean_db.app, size=4)
    clock = ManualClock()
    yield Attacked(db, service(db, clock, DEFAULTS, FakeHasher()), clock, tenant, emails)
    await db.dispose()


async def guesses_in_an_hour(
    target: Attacked, emails: Iterator[str], sources: Iterator[str]
) -> int:
    """Wrong guesses that got an answer within an hour, each sent as soon as allowed."""
    end = target.clock.now() + HOUR
    guesses = 0
    email, source = next(emails), next(sources)
    while target.clock.now() < end:
        try:
            await target.auth.login(target.tenant.id, email, "a wrong guess", source)
        except InvalidCredentials:
            guesses += 1
            email, source = next(emails), next(sources)
        except RateLimited as refused:
            target.clock.advance(refused.retry_after_seconds)
    return guesses


async def test_one_address_gets_16_guesses_at_one_account_in_the_first_hour(
    attacked: Attacked,
) -> None:
    # 5 at once, then 1, 2, 4, 8, 16 s apart (10: the account's budget for 15 minutes);
    # at 15 min one more, then 64, 128, 256, 512 s apart, then every 15 minutes.
    guesses = await guesses_in_an_hour(
        attacked, itertools.repeat(attacked.emails[0]), itertools.repeat("203.0.113.66")
    )
    assert guesses == 16
    # From then on, one every 15 minutes.
    assert (
        await guesses_in_an_hour(
            attacked, itertools.repeat(attacked.emails[0]), itertools.repeat("203.0.113.66")
        )
        == 4
    )


async def test_many_addresses_get_40_guesses_an_hour_at_one_account(attacked: Attacked) -> None:
    guesses = await guesses_in_an_hour(attacked, itertools.repeat(attacked.emails[0]), addresses())
    assert guesses == 4 * DEFAULTS.per_account.limit == 40


async def test_one_address_gets_400_guesses_an_hour_across_accounts(attacked: Attacked) -> None:
    # Spraying one password over many accounts (none exists, which costs the same).
    emails = (f"someone{n}@acme.example" for n in itertools.count())
    guesses = await guesses_in_an_hour(attacked, emails, itertools.repeat("203.0.113.67"))
    assert guesses == 4 * DEFAULTS.per_address.limit == 400


async def test_an_ipv6_network_is_one_address(attacked: Attacked) -> None:
    # The use case counts what the web edge hands it: a /64 for IPv6 (see test_rate_limits).
    emails = (f"someone{n}@acme.example" for n in itertools.count())
    guesses = await guesses_in_an_hour(attacked, emails, itertools.repeat("2001:db8:7:7::/64"))
    assert guesses == 400


def _spellings(c: str) -> list[str]:
    # Characters PostgreSQL's lower() maps onto ASCII (U+0130, the Kelvin sign) or not
    # (dotless i, long s), beside the plain cases.
    extra = {"i": ["İ", "ı"], "k": ["\u212a"], "s": ["ſ"]}.get(c, [])
    return [c, c.upper(), *extra]


STORED = "kiss.iris@acme.example"
variants = st.tuples(*(st.sampled_from(_spellings(c)) for c in STORED)).map("".join)
fresh = addresses("198.19")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spelling=variants)
async def test_every_spelling_the_look_up_accepts_shares_one_budget(
    attacked: Attacked, clean_db: database.Conninfos, spelling: str
) -> None:
    attacked.clock.advance(86_401)  # every window and memory from earlier examples is over
    if attacked.emails[-1] != STORED:
        attacked.emails.append(
            add_user(clean_db.owner, attacked.tenant, STORED, "fake$" + PASSWORD)
        )
    auth, tenant = attacked.auth, attacked.tenant.id
    async with SqlIdentityUnitOfWork(attacked.db, tenant) as uow:
        accepted = await uow.users.get_by_email(spelling) is not None
    # Spend the stored spelling's budget from many addresses...
    for _ in range(DEFAULTS.per_account.limit):
        with pytest.raises(InvalidCredentials):
            await auth.login(tenant, STORED, "a wrong guess", next(fresh))
    # ...then the right password under this spelling, from yet another address.
    if accepted:
        with pytest.raises(RateLimited):
            await auth.login(tenant, spelling, PASSWORD, next(fresh))
    else:
        with pytest.raises(InvalidCredentials):
            await auth.login(tenant, spelling, PASSWORD, next(fresh))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=variants, second=variants)
async def test_spellings_of_an_unknown_account_share_a_budget_as_the_look_up_would(
    attacked: Attacked, first: str, second: str
) -> None:
    """Otherwise whether budgets are shared would tell which accounts exist."""
    attacked.clock.advance(86_401)
    auth, tenant = attacked.auth, attacked.tenant.id
    async with SqlIdentityUnitOfWork(attacked.db, tenant) as uow:
        cur = await uow.conn.execute("SELECT lower(%s) = lower(%s) AS same", (first, second))
        row = await cur.fetchone()
    assert row is not None
    unknown_first, unknown_second = "x" + first, "x" + second  # no such accounts
    for _ in range(DEFAULTS.per_account.limit):
        with pytest.raises(InvalidCredentials):
            await auth.login(tenant, unknown_first, "a wrong guess", next(fresh))
    expected = RateLimited if row.same else InvalidCredentials
    with pytest.raises(expected):
        await auth.login(tenant, unknown_second, "a wrong guess", next(fresh))


# The owner's side, over HTTP with the real hasher.


@pytest.fixture
async def acme(clean_db: database.Conninfos) -> Tenant:
    return make_tenant(clean_db.owner, "acme")


@pytest.fixture
async def web(clean_db: database.Conninfos, tmp_path: Path) -> AsyncIterator[PolicyApp]:
    async with policy_app(clean_db, tmp_path, DEFAULTS) as app:
        yield app


async def test_the_owner_signs_in_while_strangers_hammer_the_account(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    owner_email = acme["seller"].email
    office = "192.0.2.10"
    owner = await web.client(office)
    first = await login(owner, owner_email, PASSWORD)
    assert first.status_code == 200, first.text
    assert owner.cookies.get(DEVICE_COOKIE)

    # Strangers, from the owner's own address too, until the account refuses them all.
    statuses = []
    for source in [office, *itertools.islice(addresses("203.0.113"), 14)]:
        stranger = await web.client(source)
        statuses += [(await login(stranger, owner_email, "a wrong guess")).status_code]
    assert statuses == [401] * 10 + [429] * 5
    new_device = await web.client("198.51.100.200")
    assert_limited(await login(new_device, owner_email, PASSWORD))
    sessions = sessions_of(clean_db.owner, acme)

    again = await login(owner, owner_email, PASSWORD)

    assert again.status_code == 200, again.text
    assert sessions_of(clean_db.owner, acme) == sessions + 1


async def test_an_office_of_thirty_behind_one_address_all_sign_in(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    emails = add_users(clean_db.owner, acme, 30, password_hash())
    statuses = []
    for n, email in enumerate(emails):
        person = await web.client("203.0.113.80")
        if n % 5 == 0:  # some mistype first
            statuses.append((await login(person, email, PASSWORD + "x")).status_code)
        statuses.append((await login(person, email, PASSWORD)).status_code)
    assert statuses.count(200) == 30
    assert statuses.count(401) == 6
    assert sessions_of(clean_db.owner, acme) == 30


async def test_a_device_has_a_failure_budget_of_its_own(
    web: PolicyApp, acme: Tenant, clean_db: database.Conninfos
) -> None:
    email = acme["shopper"].email
    device = await web.client("192.0.2.20")
    assert (await login(device, email, PASSWORD)).status_code == 200
    for _ in range(DEFAULTS.per_device.limit):
        assert (await login(device, email, "a wrong guess")).status_code == 401
    before = snapshot(clean_db.owner)

    assert assert_limited(await login(device, email, PASSWORD)) == 900

    assert snapshot(clean_db.owner) == before
    # The device's failures are not the account's: a stranger still signs in.
    stranger = await web.client("192.0.2.21")
    assert (await login(stranger, email, PASSWORD)).status_code == 200
    web.clock.advance(900)
    assert (await login(device, email, PASSWORD)).status_code == 200


async def _lock_out_strangers(web: PolicyApp, email: str) -> None:
    for source in itertools.islice(addresses("203.0.113"), DEFAULTS.per_account.limit):
        stranger = await web.client(source)
        assert (await login(stranger, email, "a wrong guess")).status_code == 401


async def test_a_device_cookie_vouches_only_for_its_own_account_while_fresh(
    web: PolicyApp, acme: Tenant
) -> None:
    seller, shopper = acme["seller"], acme["shopper"]
    device = await web.client("192.0.2.30")
    assert (await login(device, shopper.email, PASSWORD)).status_code == 200
    await _lock_out_strangers(web, seller.email)
    # The shopper's cookie is no pass for the seller's account...
    assert_limited(await login(device, seller.email, PASSWORD))
    # ...nor is a tampered one, or one for the seller signed with another key.
    codec = HmacDeviceTokenCodec(b"another-secret-of-enough-length-for-hmac")
    forged = codec.issue(DeviceClaim(seller.id, acme.id, web.clock.now()))
    genuine = device.cookies[DEVICE_COOKIE]
    for token in (forged, genuine[:-2] + "xx"):
        stranger = await web.client("192.0.2.31")
        stranger.cookies.set(DEVICE_COOKIE, token, path="/api/v1/auth/login")
        assert_limited(await login(stranger, seller.email, PASSWORD))
    # A cookie older than the policy's lifetime vouches for nothing either.
    owner = await web.client("192.0.2.32")
    assert (await login(owner, shopper.email, PASSWORD)).status_code == 200
    web.clock.advance(DEFAULTS.device_lifetime.total_seconds() + 1)
    await _lock_out_strangers(web, shopper.email)
    assert_limited(await login(owner, shopper.email, PASSWORD))


@pytest.mark.parametrize(("base", "secure"), [("http", False), ("https", True)])
async def test_the_device_cookie_is_http_only_strict_and_secure_over_https(
    web: PolicyApp, acme: Tenant, base: str, secure: bool
) -> None:
    client = await web.client("192.0.2.40", https=base == "https")
    response = await login(client, acme["admin"].email, PASSWORD)
    assert response.status_code == 200, response.text
    header = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert attributes == {"httponly", "max-age", "path", "samesite"} | (
        {"secure"} if secure else set()
    )
    assert f"Max-Age={int(DEFAULTS.device_lifetime.total_seconds())}" in header
    assert "Path=/api/v1/auth/login" in header
    assert "SameSite=strict" in header
    token = header.split(";")[0].partition("=")[2]
    claim = HmacDeviceTokenCodec(SECRET).read(token)
    assert claim == DeviceClaim(acme["admin"].id, acme.id, web.clock.now())
    # A wrong password sets no cookie.
    assert "set-cookie" not in (await login(client, acme["admin"].email, "wrong")).headers


def test_device_tokens_read_back_only_what_was_signed() -> None:
    codec = HmacDeviceTokenCodec(SECRET)
    claim = DeviceClaim(UUID(int=1), UUID(int=2), ManualClock().now())
    token = codec.issue(claim)
    assert codec.read(token) == claim
    assert codec.read(token + "a") is None
    assert codec.read("d1.x.y.z.nomac") is None
    assert codec.read("") is None
    assert codec.read("x" * 500) is None


def test_a_policy_refuses_unusable_numbers() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(0, 900)
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(10, 2 * 86_400)


async def test_many_sign_ins_to_one_account_at_once_all_succeed(
    client: httpx.AsyncClient, world: dict[str, Tenant], clean_db: database.Conninfos
) -> None:
    # A team sharing one account, or one browser's parallel tabs: every sign-in counts as a
    # failure until its password is checked, then gives it back. Those give-backs once locked
    # the counters in another order than the counting (deadlocks answered 500), and a request
    # that read the clock a moment before another one counted first was told to wait (429).
    seller = world["acme"]["seller"]
    before = sessions_of(clean_db.owner, world["acme"])

    async def sign_in_repeatedly() -> list[int]:
        return [(await login(client, seller.email, PASSWORD)).status_code for _ in range(6)]

    results = await asyncio.gather(*(sign_in_repeatedly() for _ in range(8)))

    assert [status for statuses in results for status in statuses] == [200] * 48
    assert sessions_of(clean_db.owner, world["acme"]) == before + 48
