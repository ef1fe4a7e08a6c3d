"""Sign-up, sign-in and session use cases: rotating refresh tokens with reuse detection."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

from impextech.identity.domain.model import User, UserStatus, normalise_email
from impextech.identity.domain.passwords import check_password
from impextech.identity.service.ports import (
    AccessTokenCodec,
    Attempt,
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import (
    EmailTaken,
    FieldIssue,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    RateLimited,
    RefreshTokenReused,
)
from impextech.kernel.domain.principal import Principal, Role


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    refresh_lifetime: timedelta = timedelta(days=14)
    per_address: RateLimit = RateLimit(10, 900)
    per_account: RateLimit = RateLimit(10, 900)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


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
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._policy = policy

    async def _throttle(
        self, uow: IdentityUnitOfWork, action: str, tenant_id: UUID, email: str, address: str
    ) -> None:
        """Count the attempt; refuse it (keeping the count) when a limit is exceeded."""
        per_address, per_account = self._policy.per_address, self._policy.per_account
        wait = await uow.attempts.hit_all(
            [
                Attempt(
                    f"{action}:address:{address}", per_address.limit, per_address.window_seconds
                ),
                Attempt(
                    f"{action}:account:{tenant_id}:{email.casefold()}",
                    per_account.limit,
                    per_account.window_seconds,
                ),
            ]
        )
        if wait is not None:
            await uow.commit()
            raise RateLimited(wait)

    async def _start_session(self, uow: IdentityUnitOfWork, user: User) -> TokenPair:
        now = self._clock.now()
        session_id = uuid.uuid4()
        refresh = self._new_refresh_token(user)
        await uow.sessions.start_session(
            session_id,
            user.id,
            hash_refresh_token(refresh),
            now,
            now + self._policy.refresh_lifetime,
        )
        return self._pair(user, session_id, refresh)

    async def _issue(self, uow: IdentityUnitOfWork, user: User, session_id: UUID) -> TokenPair:
        now = self._clock.now()
        refresh = self._new_refresh_token(user)
        await uow.sessions.add_refresh_token(
            session_id,
            user.id,
            hash_refresh_token(refresh),
            now,
            now + self._policy.refresh_lifetime,
        )
        return self._pair(user, session_id, refresh)

    @staticmethod
    def _new_refresh_token(user: User) -> str:
        return f"{user.tenant_id.hex}.{secrets.token_urlsafe(32)}"

    def _pair(self, user: User, session_id: UUID, refresh: str) -> TokenPair:
        return TokenPair(
            access_token=self._tokens.issue(user.tenant_id, user.id, user.role, session_id),
            refresh_token=refresh,
            expires_in=self._tokens.lifetime_seconds,
            refresh_expires_in=int(self._policy.refresh_lifetime.total_seconds()),
        )

    async def register(
        self, tenant_id: UUID, email: str, password: str, display_name: str, address: str
    ) -> tuple[User, TokenPair]:
        email = normalise_email(email)
        async with self._uow(tenant_id) as uow:
            await self._throttle(uow, "register", tenant_id, email, address)
            taken = await uow.users.email_exists(email)
            await uow.commit()  # the attempt counts whatever happens next
        check_password(password, email=email, display_name=display_name)
        if taken:
            raise EmailTaken()
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        user = User(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            email=email,
            display_name=display_name,
            role=Role.SHOPPER,
            status=UserStatus.ACTIVE,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        async with self._uow(tenant_id) as uow:
            await uow.users.add(user)
            pair = await self._start_session(uow, user)
            await uow.commit()
        return user, pair

    async def login(self, tenant_id: UUID, email: str, password: str, address: str) -> TokenPair:
        email = normalise_email(email)
        async with self._uow(tenant_id) as uow:
            await self._throttle(uow, "login", tenant_id, email, address)
            user = await uow.users.get_by_email(email)
            await uow.commit()  # the attempt counts whatever happens next
        if user is None:
            # Same work, same answer as a wrong password: no account enumeration by timing.
            await self._hasher.burn(password)
            raise InvalidCredentials()
        if not await self._hasher.verify(user.password_hash, password) or not user.is_active:
            raise InvalidCredentials()
        async with self._uow(tenant_id) as uow:
            pair = await self._start_session(uow, user)
            await uow.commit()
        return pair

    async def refresh(self, refresh_token: str) -> tuple[UUID, TokenPair]:
        tenant_id = tenant_of_refresh_token(refresh_token)
        async with self._uow(tenant_id) as uow:
            record = await uow.sessions.find_refresh_token(hash_refresh_token(refresh_token))
            if record is None or record.session_revoked:
                raise InvalidToken("unknown or revoked refresh token")
            now = self._clock.now()
            if record.used_at is not None or not await uow.sessions.mark_used(record.id, now):
                # Someone already rotated this token: either the client retried, or a thief
                # holds a copy. Either way the whole family is no longer trustworthy.
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
            pair = await self._issue(uow, user, record.session_id)
            await uow.commit()
        return tenant_id, pair

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
            await self._throttle(uow, "password", principal.tenant_id, user.email, address)
            await uow.commit()
        if not await self._hasher.verify(user.password_hash, current):
            raise InvalidCredentials("the current password is wrong")
        if new == current:
            raise InvalidInput(
                "the new password must differ from the current one",
                [FieldIssue(("body", "new_password"), "must differ from the current password")],
            )
        check_password(new, email=user.email, display_name=user.display_name)
        new_hash = await self._hasher.hash(new)
        async with self._uow(principal.tenant_id) as uow:
            now = self._clock.now()
            updated = replace(user, password_hash=new_hash, updated_at=now)
            await uow.users.update(updated)
            await uow.sessions.revoke_user_sessions(user.id, now, "password-changed")
            pair = await self._start_session(uow, updated)
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
