"""Sign-up, sign-in and session use cases: rotating refresh tokens with reuse detection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from impextech.identity.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    PasswordChangedMeanwhile,
    RefreshTokenReused,
)
from impextech.identity.domain.model import RefreshTokenRecord, User, new_user, normalise_email
from impextech.identity.domain.passwords import check_password
from impextech.identity.service.accounts import account_email
from impextech.identity.service.ports import (
    AccessTokenCodec,
    Attempt,
    Backoff,
    Budget,
    DeviceClaim,
    DeviceTokenCodec,
    Hold,
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import FieldIssue, InvalidInput, RateLimited
from impextech.kernel.domain.principal import Principal, Role


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.limit < 1 or not 1 <= self.window_seconds <= 86_400:
            raise ValueError(f"a rate limit needs 1+ attempts per 1-86400 s, not {self}")


@dataclass(frozen=True, slots=True)
class SignInBackoff:
    """Per account and client address: ``free`` failures at once, then each further attempt
    waits ``base_seconds * 2**k`` after the previous one (at most ``max_seconds``); forgotten
    after ``memory_seconds`` without a failure."""

    free: int = 5
    base_seconds: int = 1
    max_seconds: int = 900
    memory_seconds: int = 86_400

    def __post_init__(self) -> None:
        if self.free < 1 or self.base_seconds < 1 or self.max_seconds < self.base_seconds:
            raise ValueError(f"an unusable sign-in backoff: {self}")
        if not 1 <= self.memory_seconds <= 86_400:
            raise ValueError("the backoff's memory must be 1-86400 s")


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    refresh_lifetime: timedelta = timedelta(days=14)
    # However often it is refreshed, a session ends this long after sign-in.
    session_lifetime: timedelta = timedelta(days=30)
    # A token presented again this soon after its rotation is taken for the client's own
    # retry (it gets the same successor); later, for theft (the session is revoked).
    refresh_reuse_grace: timedelta = timedelta(seconds=10)
    # Sign-in limits count failures only (docs/sign-in-limits.md). Clients without the
    # account's device cookie share the account's and their address's budgets, and slow down
    # per account and address; a device cookie's holder has a budget of its own.
    per_address: RateLimit = RateLimit(100, 900)
    per_account: RateLimit = RateLimit(10, 900)
    per_device: RateLimit = RateLimit(10, 900)
    backoff: SignInBackoff = SignInBackoff()
    device_lifetime: timedelta = timedelta(days=90)
    # Every sign-up counts (each one creates an account), per client address.
    sign_ups_per_address: RateLimit = RateLimit(30, 3600)
    # Wrong current passwords on the password-change endpoint, per account.
    password_failures: RateLimit = RateLimit(10, 900)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    tokens: TokenPair
    # For the client to present at its next sign-in (None without a device-token codec).
    device_token: str | None
    device_expires_in: int


def _limit(rate: RateLimit) -> tuple[int, int]:
    return rate.limit, rate.window_seconds


def hash_refresh_token(token: str) -> bytes:
    # Refresh tokens carry 256 random bits, so a fast hash is enough to make a stolen
    # table useless; a slow one would only slow down every refresh.
    return hashlib.sha256(token.encode()).digest()


def tenant_of_refresh_token(token: str) -> UUID:
    """Refresh tokens start with their tenant, so the lookup can run under that tenant's RLS."""
    prefix, _, secret = token.partition(".")
    try:
        if len(prefix) != 32 or len(secret) < 32:
            raise ValueError
        return UUID(hex=prefix)
    except ValueError:
        raise InvalidToken("malformed refresh token") from None


class AuthService:
    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: AccessTokenCodec,
        clock: Clock,
        policy: AuthPolicy,
        rotation_key: bytes | None = None,
        devices: DeviceTokenCodec | None = None,
    ) -> None:
        """``rotation_key`` derives each refresh token's successor; every process serving the
        API must share it (the platform passes its secret key). Without one, a random key
        serves this process only, and a retry landing on another process counts as reuse."""
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._rotation_key = rotation_key or secrets.token_bytes(32)
        # Without a codec no device token is issued or honoured: every client is a stranger.
        self._devices = devices

    async def _take(
        self, uow: IdentityUnitOfWork, attempts: tuple[Attempt, ...], now: datetime
    ) -> Hold:
        """Count the attempts, or refuse them all (counting none) when a limit is reached."""
        wait = await uow.attempts.take(attempts, now)
        if wait is not None:
            raise RateLimited(wait)
        return Hold(attempts, now)

    def _trusted_device(self, token: str | None, user: User, now: datetime) -> bool:
        if token is None or self._devices is None:
            return False
        claim = self._devices.read(token)
        return (
            claim is not None
            and claim.user_id == user.id
            and claim.tenant_id == user.tenant_id
            and now - self._policy.device_lifetime < claim.issued_at <= now + timedelta(minutes=5)
        )

    async def _throttle_sign_in(
        self,
        uow: IdentityUnitOfWork,
        tenant_id: UUID,
        email: str,
        user: User | None,
        address: str,
        device_token: str | None,
    ) -> Hold:
        """Count the sign-in as a failure until it succeeds; refuse it if a budget is spent."""
        now = self._clock.now()
        policy = self._policy
        # Asked whether the account exists or not, so both cases take the same steps.
        folded = await uow.attempts.fold(email)
        if user is not None and device_token and self._trusted_device(device_token, user, now):
            device = policy.per_device
            return await self._take(
                uow, (Budget(f"login:device:{device_token}", *_limit(device)),), now
            )
        # The resolved account, not the spelling: every spelling the look-up accepts for one
        # account shares its budget. Unknown accounts fold the way the look-up compares.
        account = f"{tenant_id}:" + (f"user:{user.id}" if user is not None else f"email:{folded}")
        backoff = policy.backoff
        attempts: tuple[Attempt, ...] = (
            Budget(f"login:address:{address}", *_limit(policy.per_address)),
            Budget(f"login:account:{account}", *_limit(policy.per_account)),
            Backoff(
                f"login:account-address:{account}:{address}",
                backoff.free,
                backoff.base_seconds,
                backoff.max_seconds,
                backoff.memory_seconds,
            ),
        )
        return await self._take(uow, attempts, now)

    async def _give_back(self, tenant_id: UUID, hold: Hold) -> None:
        async with self._uow(tenant_id) as uow:
            await uow.attempts.give_back(hold)
            await uow.commit()

    def _device_token(self, user: User) -> str | None:
        if self._devices is None:
            return None
        return self._devices.issue(DeviceClaim(user.id, user.tenant_id, self._clock.now()))

    async def _start_session(self, uow: IdentityUnitOfWork, user: User) -> TokenPair:
        now = self._clock.now()
        session_id = uuid.uuid4()
        refresh = self._new_refresh_token(user)
        session_ends = now + self._policy.session_lifetime
        expires_at = min(now + self._policy.refresh_lifetime, session_ends)
        await uow.sessions.start_session(
            session_id, user.id, hash_refresh_token(refresh), now, expires_at, session_ends
        )
        return self._pair(user, session_id, refresh, expires_at - now)

    @staticmethod
    def _new_refresh_token(user: User) -> str:
        return f"{user.tenant_id.hex}.{secrets.token_urlsafe(32)}"

    def _successor(self, refresh_token: str) -> str:
        """The token that replaces ``refresh_token``: the same every time it is asked for, so
        a retried rotation can be answered alike, and unguessable without the key."""
        tenant_hex = refresh_token.partition(".")[0]
        digest = hmac.digest(
            self._rotation_key, b"refresh-rotation\x00" + refresh_token.encode(), "sha256"
        )
        return f"{tenant_hex}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    def _pair(
        self, user: User, session_id: UUID, refresh: str, refresh_left: timedelta
    ) -> TokenPair:
        return TokenPair(
            access_token=self._tokens.issue(user.tenant_id, user.id, user.role, session_id),
            refresh_token=refresh,
            expires_in=self._tokens.lifetime_seconds,
            refresh_expires_in=int(refresh_left.total_seconds()),
        )

    async def register(
        self, tenant_id: UUID, email: str, password: str, display_name: str, address: str
    ) -> tuple[User, TokenPair]:
        email = account_email(email)
        async with self._uow(tenant_id) as uow:
            sign_ups = self._policy.sign_ups_per_address
            await self._take(
                uow, (Budget(f"register:address:{address}", *_limit(sign_ups)),), self._clock.now()
            )
            taken = await uow.users.email_exists(email)
            await uow.commit()  # the attempt counts whatever happens next
        check_password(password, email=email, display_name=display_name)
        if taken:
            raise EmailTaken()
        user = new_user(
            tenant_id=tenant_id,
            email=email,
            display_name=display_name,
            role=Role.SHOPPER,
            password_hash=await self._hasher.hash(password),
            now=self._clock.now(),
        )
        async with self._uow(tenant_id) as uow:
            await uow.users.add(user)
            pair = await self._start_session(uow, user)
            await uow.commit()
        return user, pair

    async def login(
        self,
        tenant_id: UUID,
        email: str,
        password: str,
        address: str,
        device_token: str | None = None,
    ) -> SignedIn:
        email = normalise_email(email)
        async with self._uow(tenant_id) as uow:
            user = await uow.users.get_by_email(email)
            hold = await self._throttle_sign_in(uow, tenant_id, email, user, address, device_token)
            await uow.commit()  # a failure until proven otherwise: given back on success
        if user is None:
            # Same work, same answer as a wrong password: no account enumeration by timing.
            await self._hasher.burn(password)
            raise InvalidCredentials()
        if not await self._hasher.verify(user.password_hash, password) or not user.is_active:
            raise InvalidCredentials()
        # Sign-in is the only time the password is known: bring an old hash up to the current
        # parameters now (hashed before the transaction, so no connection waits on argon2).
        rehashed = None
        if self._hasher.needs_rehash(user.password_hash):
            rehashed = await self._hasher.hash(password)
        async with self._uow(tenant_id) as uow:
            await uow.attempts.give_back(hold)
            if rehashed is not None:
                # Compare-and-set: if the password changed since it was read, that change wins.
                await uow.users.replace_password_hash(
                    user.id, user.password_hash, rehashed, self._clock.now()
                )
            pair = await self._start_session(uow, user)
            await uow.commit()
        return SignedIn(
            pair, self._device_token(user), int(self._policy.device_lifetime.total_seconds())
        )

    async def refresh(self, refresh_token: str) -> tuple[UUID, TokenPair]:
        tenant_id = tenant_of_refresh_token(refresh_token)
        async with self._uow(tenant_id) as uow:
            # Locks the token's row: a concurrent rotation of the same token waits here.
            record = await uow.sessions.find_refresh_token(hash_refresh_token(refresh_token))
            if record is None or record.session_revoked:
                raise InvalidToken("unknown or revoked refresh token")
            now = self._clock.now()
            if record.session_expires_at <= now:
                await uow.sessions.revoke_session(record.session_id, now, "session-expired")
                await uow.commit()
                raise InvalidToken("the session has reached its maximum lifetime; sign in again")
            if record.used_at is not None:
                retried = await self._answer_retry(uow, record, refresh_token, now)
                if retried is not None:
                    return tenant_id, retried
                # Rotated earlier than a retry could explain: a thief or the owner holds a
                # copy, and nobody can tell which. The whole family is no longer trustworthy.
                await uow.sessions.revoke_session(record.session_id, now, "refresh-token-reuse")
                await uow.commit()
                raise RefreshTokenReused()
            if record.expires_at <= now:
                raise InvalidToken("refresh token expired")
            user = await uow.users.get(record.user_id)
            if user is None or not user.is_active:
                await uow.sessions.revoke_session(record.session_id, now, "user-inactive")
                await uow.commit()
                raise InvalidToken("the account is not active")
            if not await uow.sessions.mark_used(record.id, now):
                raise InvalidToken("unknown or revoked refresh token")  # the row is locked
            successor = self._successor(refresh_token)
            expires_at = min(now + self._policy.refresh_lifetime, record.session_expires_at)
            await uow.sessions.add_refresh_token(
                record.session_id, user.id, hash_refresh_token(successor), now, expires_at
            )
            await uow.commit()
        return tenant_id, self._pair(user, record.session_id, successor, expires_at - now)

    async def _answer_retry(
        self,
        uow: IdentityUnitOfWork,
        record: RefreshTokenRecord,
        refresh_token: str,
        now: datetime,
    ) -> TokenPair | None:
        """The pair a retried rotation gets (a new access token, the same successor), or None
        when this is not a retry: too late, or the successor was itself already rotated."""
        assert record.used_at is not None
        if now - record.used_at > self._policy.refresh_reuse_grace:
            return None
        successor = self._successor(refresh_token)
        found = await uow.sessions.find_refresh_token(hash_refresh_token(successor))
        if (
            found is None
            or found.session_id != record.session_id
            or found.used_at is not None
            or found.expires_at <= now
        ):
            return None
        user = await uow.users.get(record.user_id)
        if user is None or not user.is_active:
            return None
        return self._pair(user, record.session_id, successor, found.expires_at - now)

    async def logout(self, principal: Principal) -> None:
        async with self._uow(principal.tenant_id) as uow:
            await uow.sessions.revoke_session(principal.session_id, self._clock.now(), "logout")
            await uow.commit()

    async def logout_all(self, principal: Principal) -> int:
        async with self._uow(principal.tenant_id) as uow:
            count = await uow.sessions.revoke_user_sessions(
                principal.user_id, self._clock.now(), "logout-all"
            )
            await uow.commit()
        return count

    async def change_password(
        self, principal: Principal, current: str, new: str, address: str
    ) -> TokenPair:
        async with self._uow(principal.tenant_id) as uow:
            user = await uow.users.get(principal.user_id)
            if user is None:
                raise InvalidToken("the account no longer exists")
            # Per account: whoever holds the session, wrong guesses at its password are few.
            failures = self._policy.password_failures
            hold = await self._take(
                uow, (Budget(f"password:account:{user.id}", *_limit(failures)),), self._clock.now()
            )
            await uow.commit()
        if not await self._hasher.verify(user.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        await self._give_back(principal.tenant_id, hold)  # a right guess is not a failure
        if new == current:
            raise InvalidInput(
                "the new password must differ from the current one",
                [FieldIssue(("body", "new_password"), "must differ from the current password")],
            )
        check_password(new, email=user.email, display_name=user.display_name)
        new_hash = await self._hasher.hash(new)
        async with self._uow(principal.tenant_id) as uow:
            # The first read was in another transaction, before the slow hashing: read the
            # row again under a lock, and write only the hash, only if it is still the one
            # the current password was checked against.
            locked = (await uow.users.lock([user.id])).get(user.id)
            if locked is None or not locked.is_active:
                raise InvalidToken("the account is not active")
            now = self._clock.now()
            if not await uow.users.replace_password_hash(
                user.id, user.password_hash, new_hash, now
            ):
                raise PasswordChangedMeanwhile()
            await uow.sessions.revoke_user_sessions(user.id, now, "password-changed")
            pair = await self._start_session(uow, locked)
            await uow.commit()
        return pair

    async def authenticate(self, access_token: str) -> Principal:
        """Verify the token, then check that its session and user are still live."""
        claims = self._tokens.verify(access_token)
        async with self._uow(claims.tenant_id) as uow:
            state = await uow.sessions.session_is_live(claims.session_id, claims.user_id)
        if state is None or not state[1]:
            raise InvalidToken("the session has ended")
        return Principal(
            tenant_id=claims.tenant_id,
            user_id=claims.user_id,
            role=state[0],
            session_id=claims.session_id,
        )
