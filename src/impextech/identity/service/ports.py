"""What the identity use cases need from the outside world, named by role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from impextech.identity.domain.model import RefreshTokenRecord, Tenant, User, UserStatus
from impextech.kernel.domain.principal import Role
from impextech.kernel.domain.uow import UnitOfWork


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...
    async def burn(self, password: str) -> None:
        """Spend the same time as a verify, for an account that does not exist."""
        ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    tenant_id: UUID
    user_id: UUID
    role: Role
    session_id: UUID
    token_id: str
    expires_at: datetime


class AccessTokenCodec(Protocol):
    lifetime_seconds: int

    def issue(self, tenant_id: UUID, user_id: UUID, role: Role, session_id: UUID) -> str: ...
    def verify(self, token: str) -> AccessClaims: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt counted against ``key``: at most ``limit`` per ``window_seconds``."""

    key: str
    limit: int
    window_seconds: int


class AttemptCounter(Protocol):
    """Sign-in, sign-up and password attempts, counted in the unit of work's transaction."""

    async def hit_all(self, attempts: Sequence[Attempt]) -> int | None:
        """Count each attempt; None if all are allowed, else the longest wait in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class UserPage:
    items: Sequence[User]
    next_position: tuple[datetime, UUID] | None


class UserStore(Protocol):
    async def add(self, user: User) -> None: ...
    async def get(self, user_id: UUID) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def email_exists(self, email: str) -> bool: ...
    async def update(self, user: User) -> None: ...
    async def list(
        self,
        *,
        role: Role | None,
        status: UserStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> UserPage: ...


class SessionStore(Protocol):
    async def start_session(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Create a session together with its first refresh token."""
        ...

    async def add_refresh_token(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
    ) -> None: ...
    async def find_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None: ...
    async def mark_used(self, token_id: UUID, now: datetime) -> bool:
        """Mark a refresh token used; False if another request used it first."""
        ...

    async def revoke_session(self, session_id: UUID, now: datetime, reason: str) -> None: ...
    async def revoke_user_sessions(self, user_id: UUID, now: datetime, reason: str) -> int: ...
    async def session_is_live(self, session_id: UUID, user_id: UUID) -> tuple[Role, bool] | None:
        """The user's current role and whether the session is live, or None if unknown."""
        ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    @property
    def users(self) -> UserStore: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def attempts(self) -> AttemptCounter: ...


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> IdentityUnitOfWork: ...


class TenantStore(Protocol):
    async def get_by_slug(self, slug: str) -> Tenant | None: ...
    async def get(self, tenant_id: UUID) -> Tenant | None: ...
    async def add(self, tenant: Tenant) -> None: ...
