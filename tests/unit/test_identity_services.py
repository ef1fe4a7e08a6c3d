"""Identity's use cases over the in-memory fakes: sign-up, sign-in, sessions, passwords, users.

The HTTP answers, SQL, row-level security and real races are tested on PostgreSQL in
tests/integration; here each rule is checked with the exact state afterwards, and every refusal
with the proof that it changed nothing it should not have.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from uuid import UUID

import pytest

from impextech.identity.adapters.device_tokens import HmacDeviceTokenCodec
from impextech.identity.domain.errors import (
    AdminRoleLost,
    EmailTaken,
    InvalidCredentials,
    InvalidResetToken,
    InvalidToken,
    LastActiveAdmin,
    PasswordChangedMeanwhile,
    RefreshTokenReused,
    UnknownTenant,
    UserNotFound,
    WeakPassword,
)
from impextech.identity.domain.model import Tenant, TenantStatus, User, UserStatus
from impextech.identity.domain.password_reset import (
    decode_seed,
    hash_reset_token,
    reset_token,
)
from impextech.identity.service.accounts import AccountAdmin
from impextech.identity.service.auth import (
    AuthPolicy,
    AuthService,
    RateLimit,
    SignInBackoff,
    TokenPair,
    hash_refresh_token,
)
from impextech.identity.service.password_reset import (
    PasswordResetMail,
    PasswordResetService,
)
from impextech.identity.service.ports import AccessClaims, DeviceClaim, MailMessage
from impextech.identity.service.sessions import Purged, SessionUpkeep
from impextech.identity.service.users import UserService
from impextech.kernel.domain.errors import Conflict, Forbidden, InvalidInput, RateLimited
from impextech.kernel.domain.principal import Principal, Role
from tests.fakes.clock import T0, ManualClock
from tests.fakes.identity import (
    COUNTERS,
    CounterRow,
    FakeAccessTokenCodec,
    FakeIdentity,
    FakeMailer,
    FakePasswordHasher,
    StoredSession,
)

pytestmark = pytest.mark.anyio

PASSWORD = "plum orbit cactus 41"
NEW_PASSWORD = "violet anchor meadow 77"
ADDRESS = "203.0.113.7"
ATTACKER = "198.51.100.66"
SECRET = b"a-secret-key-for-tests-only-0123456789"
DAY = timedelta(days=1)
ACME = Tenant(uuid.uuid4(), "acme", "Acme", TenantStatus.ACTIVE, T0)
GLOBEX = Tenant(uuid.uuid4(), "globex", "Globex", TenantStatus.ACTIVE, T0)


class World:
    """Two marketplaces in memory and every identity use case over them."""

    def __init__(
        self, policy: AuthPolicy | None = None, hasher: FakePasswordHasher | None = None
    ) -> None:
        self.identity = FakeIdentity()
        self.identity.seed(ACME, GLOBEX)
        self.clock = ManualClock()
        self.hasher = hasher or FakePasswordHasher()
        self.tokens = FakeAccessTokenCodec(self.clock)
        self.devices = HmacDeviceTokenCodec(SECRET)
        self.auth = AuthService(
            self.identity.uow,
            self.hasher,
            self.tokens,
            self.clock,
            policy or AuthPolicy(),
            rotation_key=SECRET,
            devices=self.devices,
        )
        self.users = UserService(self.identity.uow, self.clock)
        self.accounts = AccountAdmin(
            self.identity.uow, self.identity.tenants, self.hasher, self.clock
        )
        self.mailer = FakeMailer()
        self.resets = PasswordResetService(self.identity.reset_uow, self.hasher, self.clock, SECRET)
        self.reset_mail = PasswordResetMail(
            self.identity.reset_uow, self.mailer, self.clock, SECRET, "https://acme.example/reset"
        )

    async def person(
        self,
        email: str,
        role: Role = Role.SHOPPER,
        *,
        tenant: Tenant = ACME,
        status: UserStatus = UserStatus.ACTIVE,
        version: int = 2,
    ) -> User:
        """A committed account whose password is PASSWORD (hashed outside the world's hasher,
        so its counts start at zero)."""
        password_hash = await FakePasswordHasher(version).hash(PASSWORD)
        person = User(uuid.uuid4(), tenant.id, email, email.partition("@")[0].title(), role,
                      status, password_hash, T0, T0)  # fmt: skip
        self.identity.seed(person)
        return person

    def principal(self, who: User, role: Role | None = None) -> Principal:
        """``who`` as a token would present them (``role``: what the token says)."""
        return Principal(who.tenant_id, who.id, role or who.role, uuid.uuid4())

    async def signed_in(self, who: User, address: str = ADDRESS) -> TokenPair:
        return (await self.auth.login(who.tenant_id, who.email, PASSWORD, address)).tokens

    def session_of(self, pair: TokenPair) -> UUID:
        return self.tokens.claims(pair.access_token).session_id

    def session(self, pair: TokenPair) -> StoredSession:
        [found] = [s for s in self.identity.sessions(ACME.id) if s.id == self.session_of(pair)]
        return found


@pytest.fixture
def world() -> World:
    return World()


async def refused(
    world: World, error: type[Exception], action: Callable[[], Awaitable[object]]
) -> Exception:
    """Run ``action``, expect ``error``, and check it changed nothing at all."""
    before = world.identity.state()
    with pytest.raises(error) as caught:
        await action()
    assert world.identity.state() == before
    return caught.value


def login_keys(who: User, address: str = ADDRESS) -> tuple[str, str, str]:
    account = f"{who.tenant_id}:user:{who.id}"
    return (
        f"login:address:{address}",
        f"login:account:{account}",
        f"login:account-address:{account}:{address}",
    )


# -- register -----------------------------------------------------------------------------------


async def test_register_creates_an_active_shopper_signed_in(world: World) -> None:
    user, pair = await world.auth.register(
        ACME.id, " Zoe@ACME.Example ", PASSWORD, " Zoe ", ADDRESS
    )
    assert user == User(user.id, ACME.id, "Zoe@acme.example", "Zoe", Role.SHOPPER,
                        UserStatus.ACTIVE, user.password_hash, T0, T0)  # fmt: skip
    assert await world.hasher.verify(user.password_hash, PASSWORD)
    assert world.identity.users(ACME.id) == {"Zoe@acme.example": user}
    [session] = world.identity.sessions(ACME.id)
    assert session == StoredSession(ACME.id, session.id, user.id, T0, T0 + 30 * DAY)
    [token] = world.identity.refresh_tokens(ACME.id)
    assert (token.session_id, token.token_hash, token.issued_at, token.expires_at) == (
        session.id, hash_refresh_token(pair.refresh_token), T0, T0 + 14 * DAY
    )  # fmt: skip
    assert pair == TokenPair(pair.access_token, pair.refresh_token, 900, 14 * 86_400)
    assert pair.refresh_token.startswith(f"{ACME.id.hex}.")
    assert world.tokens.claims(pair.access_token) == AccessClaims(
        ACME.id, user.id, Role.SHOPPER, session.id, "jti-1", T0 + timedelta(seconds=900)
    )
    assert world.identity.counters() == {f"register:address:{ADDRESS}": CounterRow(1, T0)}


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("ADA@acme.example", PASSWORD, EmailTaken),
        ("zoe@acme.example", "short", WeakPassword),
        ("zoey@acme.example", "zoey-the-great-42", WeakPassword),
    ],
)
async def test_a_refused_sign_up_still_counts_against_the_address(
    world: World, email: str, password: str, error: type[Exception]
) -> None:
    await world.person("ada@acme.example")
    before = world.identity.state()
    with pytest.raises(error):
        await world.auth.register(ACME.id, email, password, "Zoe", ADDRESS)
    assert world.identity.state() == {
        **before,
        COUNTERS: {f"register:address:{ADDRESS}": CounterRow(1, T0)},
    }
    assert world.hasher.hashed == 0


async def test_an_unreadable_email_is_refused_before_anything_is_counted(world: World) -> None:
    await refused(
        world,
        InvalidInput,
        lambda: world.auth.register(ACME.id, "not-an-email", PASSWORD, "Zoe", ADDRESS),
    )


async def test_sign_ups_are_limited_per_address(world: World) -> None:
    world = World(AuthPolicy(sign_ups_per_address=RateLimit(2, 3600)))
    for n in range(2):
        await world.auth.register(ACME.id, f"p{n}@acme.example", PASSWORD, "Person", ADDRESS)
    world.clock.advance(timedelta(minutes=10))
    limited = await refused(
        world,
        RateLimited,
        lambda: world.auth.register(ACME.id, "p9@acme.example", PASSWORD, "Person", ADDRESS),
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after_seconds == 3000
    await world.auth.register(ACME.id, "p9@acme.example", PASSWORD, "Person", "203.0.113.8")


# -- login --------------------------------------------------------------------------------------


async def test_login_starts_a_session_sets_a_device_token_and_counts_no_failure(
    world: World,
) -> None:
    ada = await world.person("Ada@acme.example", Role.SELLER)
    world.clock.advance(timedelta(minutes=1))
    signed = await world.auth.login(ACME.id, " ADA@acme.example ", PASSWORD, ADDRESS)
    now = T0 + timedelta(minutes=1)
    session = world.session(signed.tokens)
    assert session == StoredSession(ACME.id, session.id, ada.id, now, now + 30 * DAY)
    assert world.tokens.claims(signed.tokens.access_token).role is Role.SELLER
    assert signed.device_token is not None
    assert world.devices.read(signed.device_token) == DeviceClaim(ada.id, ACME.id, now)
    assert signed.device_expires_in == 90 * 86_400
    assert world.identity.counters() == {}  # the failure counted up front was given back
    assert (world.hasher.verified, world.hasher.burned) == (1, 0)


async def test_a_wrong_password_counts_a_failure_and_starts_nothing(world: World) -> None:
    ada = await world.person("ada@acme.example")
    before = world.identity.state()
    with pytest.raises(InvalidCredentials):
        await world.auth.login(ACME.id, "ada@acme.example", "wrong password 1", ADDRESS)
    assert world.identity.state() == {
        **before,
        COUNTERS: dict.fromkeys(login_keys(ada), CounterRow(1, T0)),
    }


async def test_an_unknown_account_costs_a_burned_hash_and_answers_alike(world: World) -> None:
    before = world.identity.state()
    with pytest.raises(InvalidCredentials):
        await world.auth.login(ACME.id, "Nobody@ACME.example", PASSWORD, ADDRESS)
    assert (world.hasher.verified, world.hasher.burned) == (0, 1)
    account = f"{ACME.id}:email:nobody@acme.example"
    assert world.identity.state() == {
        **before,
        COUNTERS: {
            f"login:address:{ADDRESS}": CounterRow(1, T0),
            f"login:account:{account}": CounterRow(1, T0),
            f"login:account-address:{account}:{ADDRESS}": CounterRow(1, T0),
        },
    }


async def test_a_deactivated_account_cannot_sign_in_even_with_its_password(world: World) -> None:
    await world.person("ada@acme.example", status=UserStatus.DEACTIVATED)
    with pytest.raises(InvalidCredentials):
        await world.auth.login(ACME.id, "ada@acme.example", PASSWORD, ADDRESS)
    assert world.identity.sessions(ACME.id) == []


async def test_login_brings_an_old_hash_up_to_date(world: World) -> None:
    ada = await world.person("ada@acme.example", version=1)
    world.clock.advance(timedelta(minutes=1))
    await world.signed_in(ada)
    stored = world.identity.user(ada.id)
    assert stored is not None
    assert stored.password_hash != ada.password_hash
    assert world.hasher.needs_rehash(stored.password_hash) is False
    assert await world.hasher.verify(stored.password_hash, PASSWORD)
    assert stored == replace(ada, password_hash=stored.password_hash, updated_at=world.clock.now())


async def test_strangers_spend_the_accounts_budget_but_the_owners_browser_still_gets_in() -> None:
    policy = AuthPolicy(per_account=RateLimit(3, 900), backoff=SignInBackoff(free=100))
    world = World(policy)
    ada = await world.person("ada@acme.example")
    bea = await world.person("bea@acme.example")
    owners = await world.auth.login(ACME.id, ada.email, PASSWORD, ADDRESS)
    others = await world.auth.login(ACME.id, bea.email, PASSWORD, ADDRESS)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await world.auth.login(ACME.id, ada.email, "guess password 1", ATTACKER)
    world.clock.advance(timedelta(seconds=100))
    checked = world.hasher.verified
    for stranger in (None, others.device_token, "not-a-device-token"):
        limited = await refused(
            world,
            RateLimited,
            partial(world.auth.login, ACME.id, ada.email, PASSWORD, ADDRESS, stranger),
        )
        assert isinstance(limited, RateLimited)
        assert limited.retry_after_seconds == 800
    assert world.hasher.verified == checked  # a refused attempt checks no password
    sessions = len(world.identity.sessions(ACME.id))
    await world.auth.login(ACME.id, ada.email, PASSWORD, ATTACKER, owners.device_token)
    assert len(world.identity.sessions(ACME.id)) == sessions + 1
    world.clock.advance(timedelta(seconds=800))
    await world.auth.login(ACME.id, ada.email, PASSWORD, ADDRESS)  # a new window for strangers


# -- refresh ------------------------------------------------------------------------------------


async def test_refresh_rotates_the_token_within_the_session(world: World) -> None:
    ada = await world.person("ada@acme.example")
    first = await world.signed_in(ada)
    world.clock.advance(timedelta(minutes=1))
    tenant, second = await world.auth.refresh(first.refresh_token)
    now = world.clock.now()
    assert tenant == ACME.id
    assert second.refresh_token != first.refresh_token
    assert second.refresh_expires_in == 14 * 86_400
    assert world.tokens.claims(second.access_token) == AccessClaims(
        ACME.id, ada.id, Role.SHOPPER, world.session_of(first), "jti-2", now + timedelta(minutes=15)
    )
    old, new = world.identity.refresh_tokens(ACME.id)
    assert (old.token_hash, old.used_at) == (hash_refresh_token(first.refresh_token), now)
    assert (new.token_hash, new.session_id, new.issued_at, new.expires_at, new.used_at) == (
        hash_refresh_token(second.refresh_token), old.session_id, now, now + 14 * DAY, None
    )  # fmt: skip
    _, third = await world.auth.refresh(second.refresh_token)
    assert world.session_of(third) == world.session_of(first)


async def test_a_retry_within_the_grace_window_gets_the_same_successor(world: World) -> None:
    ada = await world.person("ada@acme.example")
    first = await world.signed_in(ada)
    _, second = await world.auth.refresh(first.refresh_token)
    world.clock.advance(timedelta(seconds=10))
    before = world.identity.state()
    _, again = await world.auth.refresh(first.refresh_token)
    assert world.identity.state() == before
    assert again.refresh_token == second.refresh_token
    assert again.access_token != second.access_token
    assert again.refresh_expires_in == 14 * 86_400 - 10
    assert world.session(first).revoked_at is None


async def test_a_token_presented_again_after_the_grace_window_ends_the_session(
    world: World,
) -> None:
    ada = await world.person("ada@acme.example")
    first = await world.signed_in(ada)
    _, second = await world.auth.refresh(first.refresh_token)
    world.clock.advance(timedelta(seconds=11))
    with pytest.raises(RefreshTokenReused):
        await world.auth.refresh(first.refresh_token)
    session = world.session(first)
    assert (session.revoked_at, session.revoked_reason) == (
        world.clock.now(),
        "refresh-token-reuse",
    )
    await refused(world, InvalidToken, lambda: world.auth.refresh(second.refresh_token))
    await refused(world, InvalidToken, lambda: world.auth.authenticate(second.access_token))


async def test_a_retry_after_the_successor_was_itself_rotated_is_reuse(world: World) -> None:
    ada = await world.person("ada@acme.example")
    first = await world.signed_in(ada)
    _, second = await world.auth.refresh(first.refresh_token)
    await world.auth.refresh(second.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await world.auth.refresh(first.refresh_token)
    assert world.session(first).revoked_reason == "refresh-token-reuse"


async def test_a_session_ends_at_its_absolute_lifetime_however_often_refreshed(
    world: World,
) -> None:
    ada = await world.person("ada@acme.example")
    pair = await world.signed_in(ada)
    world.clock.advance(13 * DAY)
    _, pair = await world.auth.refresh(pair.refresh_token)
    assert pair.refresh_expires_in == 14 * 86_400
    world.clock.advance(13 * DAY)
    _, pair = await world.auth.refresh(pair.refresh_token)
    assert pair.refresh_expires_in == 4 * 86_400  # capped at the session's end
    world.clock.advance(4 * DAY)
    with pytest.raises(InvalidToken, match="maximum lifetime"):
        await world.auth.refresh(pair.refresh_token)
    session = world.session(pair)
    assert (session.revoked_at, session.revoked_reason) == (T0 + 30 * DAY, "session-expired")


async def test_an_expired_or_unknown_refresh_token_changes_nothing(world: World) -> None:
    ada = await world.person("ada@acme.example")
    pair = await world.signed_in(ada)
    world.clock.advance(14 * DAY)
    await refused(world, InvalidToken, lambda: world.auth.refresh(pair.refresh_token))
    unknown = f"{ACME.id.hex}.{'x' * 43}"
    await refused(world, InvalidToken, lambda: world.auth.refresh(unknown))
    await refused(world, InvalidToken, lambda: world.auth.refresh("not-a-token"))


async def test_a_deactivated_accounts_refresh_ends_its_session(world: World) -> None:
    ada = await world.person("ada@acme.example")
    pair = await world.signed_in(ada)
    async with world.identity.uow(ACME.id) as uow:
        await uow.users.set_status(ada.id, UserStatus.DEACTIVATED, T0)
        await uow.commit()
    with pytest.raises(InvalidToken, match="not active"):
        await world.auth.refresh(pair.refresh_token)
    assert world.session(pair).revoked_reason == "user-inactive"


# -- authenticate and logout --------------------------------------------------------------------


async def test_authenticate_reads_the_role_now(world: World) -> None:
    ada = await world.person("ada@acme.example", Role.SELLER)
    pair = await world.signed_in(ada)
    async with world.identity.uow(ACME.id) as uow:
        await uow.users.set_role(ada.id, Role.SHOPPER, T0)
        await uow.commit()
    assert await world.auth.authenticate(pair.access_token) == Principal(
        ACME.id, ada.id, Role.SHOPPER, world.session_of(pair)
    )


async def test_logout_ends_one_session_and_logout_all_every_one(world: World) -> None:
    ada = await world.person("ada@acme.example")
    one, two, three = [await world.signed_in(ada) for _ in range(3)]
    world.clock.advance(timedelta(minutes=1))
    me = await world.auth.authenticate(one.access_token)
    await world.auth.logout(me)
    assert (world.session(one).revoked_reason, world.session(two).revoked_at) == ("logout", None)
    await refused(world, InvalidToken, lambda: world.auth.authenticate(one.access_token))
    assert await world.auth.logout_all(await world.auth.authenticate(two.access_token)) == 2
    assert [world.session(p).revoked_reason for p in (one, two, three)] == [
        "logout",
        "logout-all",
        "logout-all",
    ]


# -- change password ----------------------------------------------------------------------------


async def test_a_password_change_ends_every_session_and_starts_a_new_one(world: World) -> None:
    ada = await world.person("ada@acme.example")
    old = [await world.signed_in(ada) for _ in range(2)]
    world.clock.advance(timedelta(minutes=1))
    now = world.clock.now()
    me = await world.auth.authenticate(old[0].access_token)
    pair = await world.auth.change_password(me, PASSWORD, NEW_PASSWORD, ADDRESS)
    stored = world.identity.user(ada.id)
    assert stored is not None
    assert await world.hasher.verify(stored.password_hash, NEW_PASSWORD)
    assert stored == replace(ada, password_hash=stored.password_hash, updated_at=now)
    assert [(s.revoked_at, s.revoked_reason) for s in world.identity.sessions(ACME.id)] == [
        (now, "password-changed"),
        (now, "password-changed"),
        (None, None),
    ]
    assert world.session(pair).created_at == now
    assert world.identity.counters() == {}


async def test_a_wrong_current_password_counts_a_failure_and_changes_nothing_else(
    world: World,
) -> None:
    ada = await world.person("ada@acme.example")
    me = await world.auth.authenticate((await world.signed_in(ada)).access_token)
    before = world.identity.state()
    with pytest.raises(InvalidCredentials):
        await world.auth.change_password(me, "wrong password 1", NEW_PASSWORD, ADDRESS)
    assert world.identity.state() == {
        **before,
        COUNTERS: {f"password:account:{ada.id}": CounterRow(1, T0)},
    }


@pytest.mark.parametrize(("new", "error"), [(PASSWORD, InvalidInput), ("short", WeakPassword)])
async def test_a_refused_new_password_changes_nothing(
    world: World, new: str, error: type[Exception]
) -> None:
    ada = await world.person("ada@acme.example")
    me = await world.auth.authenticate((await world.signed_in(ada)).access_token)
    await refused(world, error, lambda: world.auth.change_password(me, PASSWORD, new, ADDRESS))


async def test_wrong_current_passwords_are_limited_per_account() -> None:
    world = World(AuthPolicy(password_failures=RateLimit(2, 900)))
    ada = await world.person("ada@acme.example")
    me = await world.auth.authenticate((await world.signed_in(ada)).access_token)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await world.auth.change_password(me, "wrong password 1", NEW_PASSWORD, ADDRESS)
    checked = world.hasher.verified
    await refused(
        world, RateLimited, lambda: world.auth.change_password(me, PASSWORD, NEW_PASSWORD, ADDRESS)
    )
    assert world.hasher.verified == checked


class RacingHasher(FakePasswordHasher):
    """Runs ``meanwhile`` once, right after its next hash: another request landing then."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def hash(self, password: str) -> str:
        encoded = await super().hash(password)
        run, self.meanwhile = self.meanwhile, None
        if run is not None:
            await run()
        return encoded


async def test_a_password_changed_meanwhile_wins_over_the_slower_change() -> None:
    hasher = RacingHasher()
    world = World(hasher=hasher)
    ada = await world.person("ada@acme.example")
    me = await world.auth.authenticate((await world.signed_in(ada)).access_token)

    async def reset_meanwhile() -> None:
        async with world.identity.uow(ACME.id) as uow:
            assert await uow.users.replace_password_hash(ada.id, ada.password_hash, "other", T0)
            await uow.commit()

    hasher.meanwhile = reset_meanwhile
    before = world.identity.state()
    with pytest.raises(PasswordChangedMeanwhile):
        await world.auth.change_password(me, PASSWORD, NEW_PASSWORD, ADDRESS)
    stored = world.identity.user(ada.id)
    assert stored == replace(ada, password_hash="other")
    assert world.identity.state() == {**before, "users": {ada.id: stored}}


# -- users --------------------------------------------------------------------------------------


async def test_update_me_writes_the_name_only_when_it_changes(world: World) -> None:
    ada = await world.person("ada@acme.example")
    me = world.principal(ada)
    world.clock.advance(timedelta(minutes=1))
    commits = world.identity.commits
    assert await world.users.update_me(me, display_name="Ada") == ada
    assert await world.users.update_me(me, display_name=None) == ada
    assert world.identity.commits == commits
    renamed = await world.users.update_me(me, display_name="Countess")
    assert renamed == replace(ada, display_name="Countess", updated_at=world.clock.now())
    assert world.identity.user(ada.id) == renamed


@pytest.fixture
async def staff(world: World) -> dict[str, User]:
    return {
        "admin": await world.person("admin@acme.example", Role.ADMIN),
        "admin2": await world.person("admin2@acme.example", Role.ADMIN),
        "seller": await world.person("seller@acme.example", Role.SELLER),
        "globex": await world.person("admin@globex.example", Role.ADMIN, tenant=GLOBEX),
    }


async def test_an_admin_changes_another_users_role(world: World, staff: dict[str, User]) -> None:
    world.clock.advance(timedelta(minutes=1))
    admin = world.principal(staff["admin"])
    promoted = await world.users.change_role(admin, staff["seller"].id, Role.ADMIN)
    assert promoted == replace(staff["seller"], role=Role.ADMIN, updated_at=world.clock.now())
    assert world.identity.user(promoted.id) == promoted
    commits = world.identity.commits
    assert await world.users.change_role(admin, promoted.id, Role.ADMIN) == promoted
    assert world.identity.commits == commits


async def test_role_changes_that_are_not_allowed_change_nothing(
    world: World, staff: dict[str, User]
) -> None:
    admin, seller = world.principal(staff["admin"]), world.principal(staff["seller"])
    target = staff["admin2"].id
    await refused(world, Forbidden, lambda: world.users.change_role(seller, target, Role.SHOPPER))
    await refused(
        world, Conflict, lambda: world.users.change_role(admin, admin.user_id, Role.SELLER)
    )
    for missing in (uuid.uuid4(), staff["globex"].id):
        await refused(
            world,
            UserNotFound,
            partial(world.users.change_role, admin, missing, Role.SELLER),
        )


async def test_the_last_active_admin_stays_and_a_demoted_admin_acts_no_more(
    world: World, staff: dict[str, User]
) -> None:
    first, second = staff["admin"], staff["admin2"]
    await world.users.change_role(world.principal(second), first.id, Role.SELLER)
    stale = world.principal(first, Role.ADMIN)  # its token still says admin
    await refused(
        world, LastActiveAdmin, lambda: world.users.change_role(stale, second.id, Role.SELLER)
    )
    await refused(world, LastActiveAdmin, lambda: world.users.deactivate(stale, second.id))
    seller = staff["seller"].id
    await refused(world, AdminRoleLost, lambda: world.users.change_role(stale, seller, Role.ADMIN))
    await refused(world, AdminRoleLost, lambda: world.users.deactivate(stale, seller))


async def test_deactivating_a_user_ends_their_sessions(
    world: World, staff: dict[str, User]
) -> None:
    seller = staff["seller"]
    pairs = [await world.signed_in(seller) for _ in range(2)]
    world.clock.advance(timedelta(minutes=1))
    now = world.clock.now()
    gone = await world.users.deactivate(world.principal(staff["admin"]), seller.id)
    assert gone == replace(seller, status=UserStatus.DEACTIVATED, updated_at=now)
    assert world.identity.user(seller.id) == gone
    assert [(world.session(p).revoked_at, world.session(p).revoked_reason) for p in pairs] == [
        (now, "deactivated"),
        (now, "deactivated"),
    ]
    with pytest.raises(InvalidToken):
        await world.auth.authenticate(pairs[0].access_token)


async def test_an_admin_deactivated_meanwhile_cannot_deactivate_others(
    world: World, staff: dict[str, User]
) -> None:
    first, second = staff["admin"], staff["admin2"]
    await world.users.deactivate(world.principal(first), second.id)
    stale = world.principal(second)
    await refused(world, AdminRoleLost, lambda: world.users.deactivate(stale, staff["seller"].id))
    await refused(world, Conflict, lambda: world.users.deactivate(stale, second.id))


# -- the operator's accounts --------------------------------------------------------------------


async def test_create_admin_and_create_account_make_active_accounts(world: World) -> None:
    boss = await world.accounts.create_admin(" ACME ", " Boss@ACME.example", PASSWORD, "  Boss ")
    assert boss == User(boss.id, ACME.id, "Boss@acme.example", "Boss", Role.ADMIN,
                        UserStatus.ACTIVE, boss.password_hash, T0, T0)  # fmt: skip
    assert await world.hasher.verify(boss.password_hash, PASSWORD)
    seller = await world.accounts.create_account(
        "globex", "s@globex.example", PASSWORD, "S", Role.SELLER
    )
    assert (seller.tenant_id, seller.role) == (GLOBEX.id, Role.SELLER)
    assert world.identity.users(ACME.id) == {"Boss@acme.example": boss}
    assert world.identity.users(GLOBEX.id) == {"s@globex.example": seller}


@pytest.mark.parametrize(
    ("slug", "email", "password", "name", "error"),
    [
        ("initech", "boss@acme.example", PASSWORD, "Boss", UnknownTenant),
        ("acme", "ADA@acme.example", PASSWORD, "Boss", EmailTaken),
        ("acme", "boss@acme.example", "short", "Boss", WeakPassword),
        ("acme", "boss@acme.example", PASSWORD, "   ", InvalidInput),
        ("acme", "boss@", PASSWORD, "Boss", InvalidInput),
    ],
)
async def test_create_admin_refusals_change_nothing_and_hash_nothing(
    world: World, slug: str, email: str, password: str, name: str, error: type[Exception]
) -> None:
    await world.person("ada@acme.example")
    await refused(world, error, lambda: world.accounts.create_admin(slug, email, password, name))
    assert world.hasher.hashed == 0


# -- password reset -----------------------------------------------------------------------------


def reset_keys(tenant: Tenant, email: str) -> tuple[str, str]:
    return f"reset:address:{ADDRESS}", f"reset:account:{tenant.id}:{email}"


async def mailed_token(world: World) -> str:
    """The token of the latest queued reset e-mail, as the mail job derives it."""
    mail = world.identity.queued_mail()[-1]
    return reset_token(SECRET, mail.tenant_id, decode_seed(mail.seed))


async def test_a_reset_request_stores_a_token_and_queues_its_email(world: World) -> None:
    ada = await world.person("ada@acme.example")
    await world.resets.request(ACME.id, " ADA@acme.example", ADDRESS)
    [record] = world.identity.resets(ACME.id)
    assert (record.user_id, record.created_at, record.expires_at, record.used_at) == (
        ada.id, T0, T0 + timedelta(minutes=30), None
    )  # fmt: skip
    [mail] = world.identity.queued_mail()
    assert (mail.tenant_id, mail.reset_id) == (ACME.id, record.id)
    assert hash_reset_token(await mailed_token(world)) == record.token_hash
    assert world.identity.counters() == dict.fromkeys(
        reset_keys(ACME, "ada@acme.example"), CounterRow(1, T0)
    )


@pytest.mark.parametrize("status", [None, UserStatus.DEACTIVATED])
async def test_a_reset_for_no_active_account_only_counts(
    world: World, status: UserStatus | None
) -> None:
    if status is not None:
        await world.person("ada@acme.example", status=status)
    before = world.identity.state()
    await world.resets.request(ACME.id, "Ada@acme.example", ADDRESS)
    assert world.identity.state() == {
        **before,
        COUNTERS: dict.fromkeys(reset_keys(ACME, "ada@acme.example"), CounterRow(1, T0)),
    }


async def test_reset_requests_are_limited_per_account(world: World) -> None:
    await world.person("ada@acme.example")
    for _ in range(5):
        await world.resets.request(ACME.id, "ada@acme.example", ADDRESS)
    await refused(
        world, RateLimited, lambda: world.resets.request(ACME.id, "ada@acme.example", ADDRESS)
    )
    assert len(world.identity.resets(ACME.id)) == 5


async def test_confirming_sets_the_password_retires_other_links_and_ends_sessions(
    world: World,
) -> None:
    ada = await world.person("ada@acme.example")
    pair = await world.signed_in(ada)
    await world.resets.request(ACME.id, ada.email, ADDRESS)
    await world.resets.request(ACME.id, ada.email, ADDRESS)
    token = await mailed_token(world)
    world.clock.advance(timedelta(minutes=5))
    now = world.clock.now()
    assert await world.resets.confirm(token, NEW_PASSWORD) == ACME.id
    stored = world.identity.user(ada.id)
    assert stored is not None
    assert await world.hasher.verify(stored.password_hash, NEW_PASSWORD)
    assert [r.used_at for r in world.identity.resets(ACME.id)] == [now, now]
    assert (world.session(pair).revoked_at, world.session(pair).revoked_reason) == (
        now,
        "password-reset",
    )
    await refused(world, InvalidResetToken, lambda: world.resets.confirm(token, "another one 99x"))


async def test_an_expired_malformed_or_weak_reset_changes_nothing(world: World) -> None:
    ada = await world.person("ada@acme.example")
    await world.resets.request(ACME.id, ada.email, ADDRESS)
    token = await mailed_token(world)
    await refused(world, WeakPassword, lambda: world.resets.confirm(token, "short"))
    await refused(world, InvalidResetToken, lambda: world.resets.confirm("nonsense", NEW_PASSWORD))
    world.clock.advance(timedelta(minutes=30))
    await refused(world, InvalidResetToken, lambda: world.resets.confirm(token, NEW_PASSWORD))
    assert world.hasher.hashed == 0


async def test_the_reset_mail_links_to_the_token_while_it_is_usable(world: World) -> None:
    ada = await world.person("ada@acme.example")
    await world.resets.request(ACME.id, ada.email, ADDRESS)
    [mail] = world.identity.queued_mail()
    token = await mailed_token(world)
    assert await world.reset_mail.send(ACME.id, mail.reset_id, mail.seed) is True
    assert world.mailer.sent == [
        MailMessage(
            to="ada@acme.example",
            subject="Reset your password",
            text=(
                "Hello Ada,\n\nSomeone asked to reset the password of your account. If it was"
                " you, open this link within 30 minutes to choose a new one:\n\n"
                f"https://acme.example/reset?token={token}\n\nThe link works once. If you did"
                " not ask, ignore this message: your password stays as it is.\n"
            ),
        )
    ]
    world.clock.advance(timedelta(minutes=30))
    assert await world.reset_mail.send(ACME.id, mail.reset_id, mail.seed) is False
    assert len(world.mailer.sent) == 1


# -- session upkeep -----------------------------------------------------------------------------


async def test_purge_deletes_what_ended_before_the_retention(world: World) -> None:
    ada = await world.person("ada@acme.example")
    logged_out, kept = await world.signed_in(ada), await world.signed_in(ada)
    await world.auth.logout(await world.auth.authenticate(logged_out.access_token))
    upkeep = SessionUpkeep(world.identity.uow, world.clock, retention=timedelta(days=7))
    world.clock.advance(7 * DAY)
    assert await upkeep.purge(ACME.id) == Purged(refresh_tokens=0, sessions=0)
    world.clock.advance(timedelta(seconds=1))
    assert await upkeep.purge(ACME.id) == Purged(refresh_tokens=1, sessions=1)
    assert [s.id for s in world.identity.sessions(ACME.id)] == [world.session_of(kept)]
    world.clock.advance(14 * DAY)  # the kept session's token expired 7 days ago
    assert await upkeep.purge(ACME.id) == Purged(refresh_tokens=1, sessions=0)
    assert await upkeep.purge(GLOBEX.id) == Purged(refresh_tokens=0, sessions=0)
