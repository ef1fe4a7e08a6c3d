"""What the identity use cases need from the outside world, named by role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from impextech.identity.domain.model import RefreshTokenRecord, Tenant, User, UserStatus
from impextech.identity.domain.password_reset import PasswordResetRecord
from impextech.kernel.domain.principal import Role
from impextech.kernel.domain.uow import UnitOfWork


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...
    async def burn(self, password: str) -> None:
        """Spend the same time as a verify, for an account that does not exist."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the hasher's current ones."""
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
class Budget:
    """At most ``limit`` attempts count against ``key`` per window; the window opens at the
    first counted attempt and lasts ``window_seconds`` (a burst cannot straddle a boundary)."""

    key: str
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempts against ``key`` slow down instead of stopping.

    The first ``free`` go at once; each one after that must wait ``base_seconds * 2**k``
    (k = attempts beyond ``free``, from 0; at most ``max_seconds``) after the previous one.
    The count is forgotten after ``memory_seconds`` without an attempt.
    """

    key: str
    free: int
    base_seconds: int
    max_seconds: int
    memory_seconds: int


Attempt = Budget | Backoff


@dataclass(frozen=True, slots=True)
class Hold:
    """Attempts counted by ``AttemptCounter.take`` at ``at``: a success gives them back."""

    attempts: tuple[Attempt, ...]
    at: datetime


class AttemptCounter(Protocol):
    """Sign-in, sign-up and password attempts, counted in the unit of work's transaction.

    Keys name what they count ("login:account:…"); the counter stores only a keyed digest.
    """

    async def fold(self, email: str) -> str:
        """The spelling the account look-up compares: two addresses it treats as one fold alike."""
        ...

    async def take(self, attempts: Sequence[Attempt], now: datetime) -> int | None:
        """Count every attempt and answer None, or count none and answer the longest wait in
        seconds when any is over its limit (all or nothing, so a refusal costs no budget)."""
        ...

    async def give_back(self, hold: Hold) -> None:
        """Un-count attempts that turned out to succeed: only failures use up a budget."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """What a device cookie says: this client signed in to this account at ``issued_at``."""

    user_id: UUID
    tenant_id: UUID
    issued_at: datetime


class DeviceTokenCodec(Protocol):
    def issue(self, claim: DeviceClaim) -> str: ...
    def read(self, token: str) -> DeviceClaim | None:
        """The claim of a token this server signed; None for anything else."""
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
    async def lock(self, user_ids: Sequence[UUID]) -> dict[UUID, User]:
        """Read and lock these users until the transaction ends, always in id order (so two
        transactions locking the same pair cannot deadlock); missing ids are left out."""
        ...

    async def count_active_admins(self) -> int: ...

    # Each write below touches only its own column (and updated_at), so it never carries a
    # stale copy of another column back; each answers the row as written, or None if absent.
    async def set_display_name(
        self, user_id: UUID, display_name: str, now: datetime
    ) -> User | None: ...

    async def set_role(self, user_id: UUID, role: Role, now: datetime) -> User | None: ...
    async def set_status(self, user_id: UUID, status: UserStatus, now: datetime) -> User | None: ...

    async def replace_password_hash(
        self, user_id: UUID, old_hash: str, new_hash: str, now: datetime
    ) -> bool:
        """Swap the hash only if it is still ``old_hash``; False if it changed meanwhile."""
        ...

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
        session_expires_at: datetime,
    ) -> None:
        """Create a session (ending at ``session_expires_at`` whatever happens) together with
        its first refresh token (valid until ``expires_at``)."""
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

    async def purge_spent(self, before: datetime) -> tuple[int, int]:
        """Delete refresh tokens that expired before ``before`` and sessions that ended
        (revoked or past their absolute lifetime) before it, with all their tokens.

        Answers (refresh tokens deleted, sessions deleted)."""
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
    async def list_all(self) -> Sequence[Tenant]:
        """Every marketplace, by slug."""
        ...


# -- password reset ------------------------------------------------------------------------------


class PasswordResetStore(Protocol):
    """A tenant's password reset tokens, by the hash of the token."""

    async def add(
        self, reset_id: UUID, user_id: UUID, token_hash: bytes, now: datetime, expires_at: datetime
    ) -> None: ...
    async def get(self, reset_id: UUID) -> PasswordResetRecord | None: ...
    async def find(self, token_hash: bytes) -> PasswordResetRecord | None: ...
    async def use(self, reset_id: UUID, now: datetime) -> bool:
        """Mark it used if it is still unused and unexpired at ``now``; False otherwise."""
        ...

    async def retire_user(self, user_id: UUID, now: datetime) -> int:
        """Mark every still-unused token of the user used (an older e-mail stops working)."""
        ...


class MailQueue(Protocol):
    """Queues an e-mail to send after the transaction commits (never on the request path)."""

    async def password_reset(self, reset_id: UUID, seed: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MailMessage:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    """Hands a message to whatever delivers mail (a file outbox, an SMTP relay)."""

    async def send(self, message: MailMessage) -> None: ...


class PasswordResetUnitOfWork(IdentityUnitOfWork, Protocol):
    @property
    def resets(self) -> PasswordResetStore: ...
    @property
    def mail(self) -> MailQueue: ...


class PasswordResetUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> PasswordResetUnitOfWork: ...
