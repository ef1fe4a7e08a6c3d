"""Fakes of the identity context's ports: users, sessions, attempt counters, tenants, password
resets, the password hasher, access tokens and the mailer.

``FakeIdentity`` is one platform's identity data in memory: every unit of work it hands out runs
over its one ``MemoryDatabase``, scoped to one tenant like ``SqlIdentityUnitOfWork``, while the
tenant registry and the attempt counters are global, as their tables are.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from impextech.identity.domain.errors import EmailTaken, InvalidToken, SlugTaken
from impextech.identity.domain.model import RefreshTokenRecord, Tenant, User, UserStatus
from impextech.identity.domain.password_reset import PasswordResetRecord
from impextech.identity.service.ports import (
    AccessClaims,
    Attempt,
    Budget,
    Hold,
    MailMessage,
    UserPage,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.principal import Role
from tests.fakes.memory import MemoryDatabase, MemoryTransaction, MemoryUnitOfWork

TENANTS = "tenants"
SLUGS = "tenant_slugs"  # lock names only: one per slug, as the unique index serialises
USERS = "users"
EMAILS = "user_emails"  # lock names only: one per (tenant, folded email)
SESSIONS = "auth_sessions"
REFRESH_TOKENS = "refresh_tokens"
COUNTERS = "rate_limit_counters"
RESETS = "password_reset_tokens"
RESET_MAIL = "reset_mail"  # a log: the e-mails queued by committed transactions

# The attempt counter's table is pruned of rows untouched this long (rate_limit.RETENTION).
RETENTION = timedelta(days=1)


def pg_lower(text: str) -> str:
    """``lower()`` as PostgreSQL computes it in a UTF-8 database: one character at a time.

    Python's ``str.lower`` is context-sensitive (a final capital sigma becomes ς) and may grow a
    string (İ becomes i plus a combining dot); PostgreSQL maps each character on its own.
    """
    return "".join("i" if c == "\u0130" else c.lower() for c in text)


# -- users --------------------------------------------------------------------------------------


class _TenantRows:
    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    def _mine(self, table: str, key: UUID) -> Any | None:
        row = self._tx.get(table, key)
        return row if row is not None and row.tenant_id == self._tenant else None

    def _all(self, table: str) -> list[Any]:
        return [r for r in self._tx.rows(table) if r.tenant_id == self._tenant]

    def _user(self, user_id: UUID) -> User | None:
        user: User | None = self._mine(USERS, user_id)
        return user


class FakeUserStore(_TenantRows):
    async def add(self, user: User) -> None:
        if user.tenant_id != self._tenant:
            raise PermissionError("row-level security refuses another tenant's row")
        await self._tx.lock(EMAILS, (self._tenant, pg_lower(user.email)))
        if await self.email_exists(user.email):
            raise EmailTaken()
        if self._tx.get(USERS, user.id) is not None:
            raise ValueError(f"user id {user.id} exists already")
        await self._tx.put(USERS, user.id, user)

    async def get(self, user_id: UUID) -> User | None:
        return self._user(user_id)

    async def get_by_email(self, email: str) -> User | None:
        folded = pg_lower(email)
        found: list[User] = [u for u in self._all(USERS) if pg_lower(u.email) == folded]
        return found[0] if found else None

    async def email_exists(self, email: str) -> bool:
        return await self.get_by_email(email) is not None

    async def lock(self, user_ids: Sequence[UUID]) -> dict[UUID, User]:
        locked: dict[UUID, User] = {}
        for user_id in sorted(set(user_ids)):
            if self._user(user_id) is None:
                continue  # no row, nothing to lock (FOR UPDATE locks only rows it finds)
            await self._tx.lock(USERS, user_id)
            user = self._user(user_id)  # again: the writer we waited for may have changed it
            if user is not None:
                locked[user_id] = user
        return locked

    async def count_active_admins(self) -> int:
        return sum(1 for u in self._all(USERS) if u.role is Role.ADMIN and u.is_active)

    async def _set(self, user_id: UUID, now: datetime, **column: Any) -> User | None:
        if self._user(user_id) is None:
            return None
        await self._tx.lock(USERS, user_id)
        current = self._user(user_id)
        if current is None:
            return None
        updated = replace(current, updated_at=now, **column)
        await self._tx.put(USERS, user_id, updated)
        return updated

    async def set_display_name(
        self, user_id: UUID, display_name: str, now: datetime
    ) -> User | None:
        return await self._set(user_id, now, display_name=display_name)

    async def set_role(self, user_id: UUID, role: Role, now: datetime) -> User | None:
        return await self._set(user_id, now, role=role)

    async def set_status(self, user_id: UUID, status: UserStatus, now: datetime) -> User | None:
        return await self._set(user_id, now, status=status)

    async def replace_password_hash(
        self, user_id: UUID, old_hash: str, new_hash: str, now: datetime
    ) -> bool:
        if self._user(user_id) is None:
            return False
        await self._tx.lock(USERS, user_id)
        current = self._user(user_id)
        if current is None or current.password_hash != old_hash:
            return False
        await self._tx.put(USERS, user_id, replace(current, password_hash=new_hash, updated_at=now))
        return True

    async def list(
        self,
        *,
        role: Role | None,
        status: UserStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> UserPage:
        users: list[User] = [
            u
            for u in self._all(USERS)
            if (role is None or u.role is role)
            and (status is None or u.status is status)
            and (after is None or (u.created_at, u.id) > after)
        ]
        users.sort(key=lambda u: (u.created_at, u.id))
        items = users[:limit]
        more = len(users) > limit and items
        return UserPage(items, (items[-1].created_at, items[-1].id) if more else None)


# -- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSession:
    tenant_id: UUID
    id: UUID
    user_id: UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def ended_before(self, before: datetime) -> bool:
        return (self.revoked_at is not None and self.revoked_at < before) or (
            self.expires_at < before
        )


@dataclass(frozen=True, slots=True)
class StoredRefreshToken:
    tenant_id: UUID
    id: UUID
    session_id: UUID
    user_id: UUID
    token_hash: bytes
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class FakeSessionStore(_TenantRows):
    def _session(self, session_id: UUID) -> StoredSession | None:
        session: StoredSession | None = self._mine(SESSIONS, session_id)
        return session

    def _token(self, token_id: UUID) -> StoredRefreshToken | None:
        token: StoredRefreshToken | None = self._mine(REFRESH_TOKENS, token_id)
        return token

    async def _add_token(
        self, session_id: UUID, user_id: UUID, token_hash: bytes, now: datetime, expires: datetime
    ) -> None:
        if self._session(session_id) is None or self._user(user_id) is None:
            raise LookupError("a refresh token needs its session and user (foreign keys)")
        if any(t.token_hash == token_hash for t in self._tx.rows(REFRESH_TOKENS)):
            raise ValueError("a refresh token's hash is unique")
        token = StoredRefreshToken(
            self._tenant, uuid4(), session_id, user_id, token_hash, now, expires
        )
        await self._tx.put(REFRESH_TOKENS, token.id, token)

    async def start_session(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
        session_expires_at: datetime,
    ) -> None:
        if self._user(user_id) is None:
            raise LookupError("a session needs its user (foreign key)")
        if session_expires_at <= now:
            raise ValueError("a session must end after it starts (check constraint)")
        session = StoredSession(self._tenant, session_id, user_id, now, session_expires_at)
        await self._tx.put(SESSIONS, session_id, session)
        await self._add_token(session_id, user_id, token_hash, now, expires_at)

    async def add_refresh_token(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await self._add_token(session_id, user_id, token_hash, now, expires_at)

    async def find_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        found = [t for t in self._all(REFRESH_TOKENS) if t.token_hash == token_hash]
        if not found:
            return None
        await self._tx.lock(REFRESH_TOKENS, found[0].id)  # FOR UPDATE OF the token
        token = self._token(found[0].id)
        session = self._session(token.session_id) if token is not None else None
        if token is None or session is None:
            return None
        return RefreshTokenRecord(
            id=token.id,
            tenant_id=token.tenant_id,
            session_id=token.session_id,
            user_id=token.user_id,
            expires_at=token.expires_at,
            used_at=token.used_at,
            session_revoked=session.revoked_at is not None,
            session_expires_at=session.expires_at,
        )

    async def mark_used(self, token_id: UUID, now: datetime) -> bool:
        if self._token(token_id) is None:
            return False
        await self._tx.lock(REFRESH_TOKENS, token_id)
        token = self._token(token_id)
        if token is None or token.used_at is not None:
            return False
        await self._tx.put(REFRESH_TOKENS, token_id, replace(token, used_at=now))
        return True

    async def _revoke(self, session_id: UUID, now: datetime, reason: str) -> bool:
        await self._tx.lock(SESSIONS, session_id)
        session = self._session(session_id)
        if session is None or session.revoked_at is not None:
            return False
        revoked = replace(session, revoked_at=now, revoked_reason=reason)
        await self._tx.put(SESSIONS, session_id, revoked)
        return True

    async def revoke_session(self, session_id: UUID, now: datetime, reason: str) -> None:
        if self._session(session_id) is not None:
            await self._revoke(session_id, now, reason)

    async def revoke_user_sessions(self, user_id: UUID, now: datetime, reason: str) -> int:
        live = sorted(
            s.id for s in self._all(SESSIONS) if s.user_id == user_id and s.revoked_at is None
        )
        return sum([await self._revoke(session_id, now, reason) for session_id in live])

    async def session_is_live(self, session_id: UUID, user_id: UUID) -> tuple[Role, bool] | None:
        session = self._session(session_id)
        user = self._user(user_id)
        if session is None or user is None or session.user_id != user_id:
            return None
        return user.role, session.revoked_at is None and user.is_active

    async def purge_spent(self, before: datetime) -> tuple[int, int]:
        ended = {s.id for s in self._all(SESSIONS) if s.ended_before(before)}
        tokens = [
            t.id
            for t in self._all(REFRESH_TOKENS)
            if t.expires_at < before or t.session_id in ended
        ]
        for token_id in tokens:
            await self._tx.delete(REFRESH_TOKENS, token_id)
        for session_id in ended:
            await self._tx.delete(SESSIONS, session_id)
        return len(tokens), len(ended)


# -- attempt counters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterRow:
    """A counter: for a budget, hits in the window opened at ``since``; for a backoff, hits so
    far and ``since`` the latest one."""

    hits: int
    since: datetime


def _span(attempt: Attempt) -> timedelta:
    seconds = attempt.window_seconds if isinstance(attempt, Budget) else attempt.memory_seconds
    return timedelta(seconds=seconds)


def _wait(attempt: Attempt, row: CounterRow | None, now: datetime) -> timedelta:
    """How long ``attempt`` must wait at ``now`` (zero or less: it may go)."""
    if row is None or row.since <= now - _span(attempt):
        return timedelta(0)
    if isinstance(attempt, Budget):
        full = row.hits >= attempt.limit
        return row.since + _span(attempt) - now if full else timedelta(0)
    beyond = row.hits - attempt.free
    if beyond < 0:
        return timedelta(0)
    delay = min(attempt.max_seconds, attempt.base_seconds * 2 ** min(beyond, 62))
    return row.since + timedelta(seconds=delay) - now


def _counted(attempt: Attempt, row: CounterRow | None, now: datetime) -> CounterRow:
    if row is None or row.since <= now - _span(attempt):
        return CounterRow(1, now)
    return CounterRow(row.hits + 1, row.since if isinstance(attempt, Budget) else now)


class FakeAttemptCounter:
    """Counts attempts in the unit of work's transaction, in one table for every tenant."""

    def __init__(self, tx: MemoryTransaction) -> None:
        self._tx = tx

    async def fold(self, email: str) -> str:
        return pg_lower(email)

    def _row(self, key: str) -> CounterRow | None:
        row: CounterRow | None = self._tx.get(COUNTERS, key)
        return row

    async def take(self, attempts: Sequence[Attempt], now: datetime) -> int | None:
        for attempt in attempts:
            if _span(attempt) > RETENTION:
                raise ValueError(f"{attempt.key}: windows longer than {RETENTION} are pruned")
        waits: list[int] = []
        for attempt in sorted(attempts, key=lambda a: a.key):
            await self._tx.lock(COUNTERS, attempt.key)
            wait = _wait(attempt, self._row(attempt.key), now).total_seconds()
            if wait > 0:
                waits.append(min(int(_span(attempt).total_seconds()), max(1, math.ceil(wait))))
        if waits:
            return max(waits)  # all or nothing: a refusal counts none of them
        for attempt in attempts:
            await self._tx.put(
                COUNTERS, attempt.key, _counted(attempt, self._row(attempt.key), now)
            )
        return None

    async def give_back(self, hold: Hold) -> None:
        for attempt in sorted(hold.attempts, key=lambda a: a.key):
            await self._tx.lock(COUNTERS, attempt.key)
            row = self._row(attempt.key)
            if row is None:
                continue
            if isinstance(attempt, Budget):
                ours = hold.at - _span(attempt) < row.since <= hold.at  # the same window
            else:
                ours = row.since >= hold.at  # ours is still among the counted ones
            if not ours:
                continue
            if row.hits > 1:
                await self._tx.put(COUNTERS, attempt.key, replace(row, hits=row.hits - 1))
            else:
                await self._tx.delete(COUNTERS, attempt.key)


# -- password resets ----------------------------------------------------------------------------


class FakePasswordResetStore(_TenantRows):
    def _reset(self, reset_id: UUID) -> PasswordResetRecord | None:
        record: PasswordResetRecord | None = self._mine(RESETS, reset_id)
        return record

    async def add(
        self, reset_id: UUID, user_id: UUID, token_hash: bytes, now: datetime, expires_at: datetime
    ) -> None:
        if self._user(user_id) is None:
            raise LookupError("a reset token needs its user (foreign key)")
        if len(token_hash) != 32 or expires_at <= now:
            raise ValueError("a 32-byte hash and an expiry after creation (check constraints)")
        record = PasswordResetRecord(
            reset_id, self._tenant, user_id, token_hash, now, expires_at, None
        )
        await self._tx.put(RESETS, reset_id, record)

    async def get(self, reset_id: UUID) -> PasswordResetRecord | None:
        return self._reset(reset_id)

    async def find(self, token_hash: bytes) -> PasswordResetRecord | None:
        found: list[PasswordResetRecord] = [
            r for r in self._all(RESETS) if r.token_hash == token_hash
        ]
        return found[0] if found else None

    async def _use(self, reset_id: UUID, now: datetime) -> bool:
        await self._tx.lock(RESETS, reset_id)
        record = self._reset(reset_id)
        if record is None or record.used_at is not None:
            return False
        await self._tx.put(RESETS, reset_id, replace(record, used_at=now))
        return True

    async def use(self, reset_id: UUID, now: datetime) -> bool:
        record = self._reset(reset_id)
        if record is None or record.expires_at <= now:
            return False
        return await self._use(reset_id, now)

    async def retire_user(self, user_id: UUID, now: datetime) -> int:
        unused = sorted(
            r.id for r in self._all(RESETS) if r.user_id == user_id and r.used_at is None
        )
        return sum([await self._use(reset_id, now) for reset_id in unused])


@dataclass(frozen=True, slots=True)
class QueuedResetMail:
    tenant_id: UUID
    reset_id: UUID
    seed: str


class FakeMailQueue:
    """Queues in the transaction: the e-mail exists exactly when the transaction commits."""

    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    async def password_reset(self, reset_id: UUID, seed: str) -> None:
        self._tx.append(RESET_MAIL, QueuedResetMail(self._tenant, reset_id, seed))


# -- units of work ------------------------------------------------------------------------------


class FakeIdentityUnitOfWork(MemoryUnitOfWork):
    users: FakeUserStore
    sessions: FakeSessionStore
    attempts: FakeAttemptCounter

    def __init__(self, identity: FakeIdentity, tenant_id: UUID) -> None:
        super().__init__(identity.db, tenant_id)
        self._identity = identity

    def _bind(self, tx: MemoryTransaction) -> None:
        self.users = FakeUserStore(tx, self.tenant_id)
        self.sessions = FakeSessionStore(tx, self.tenant_id)
        self.attempts = FakeAttemptCounter(tx)


class FakePasswordResetUnitOfWork(FakeIdentityUnitOfWork):
    resets: FakePasswordResetStore
    mail: FakeMailQueue

    def _bind(self, tx: MemoryTransaction) -> None:
        super()._bind(tx)
        self.resets = FakePasswordResetStore(tx, self.tenant_id)
        self.mail = FakeMailQueue(tx, self.tenant_id)


# -- the tenant registry ------------------------------------------------------------------------


class FakeTenantStore:
    """The global registry; like ``SqlTenantStore`` each call is a transaction of its own."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def get_by_slug(self, slug: str) -> Tenant | None:
        found = [t for t in self._db.committed(TENANTS).values() if t.slug == slug]
        return found[0] if found else None

    async def get(self, tenant_id: UUID) -> Tenant | None:
        tenant: Tenant | None = self._db.committed(TENANTS).get(tenant_id)
        return tenant

    async def add(self, tenant: Tenant) -> None:
        tx = self._db.begin()
        try:
            await tx.lock(SLUGS, tenant.slug)
            if any(t.slug == tenant.slug for t in tx.rows(TENANTS)):
                raise SlugTaken(f"the slug {tenant.slug!r} is taken")
            if tx.get(TENANTS, tenant.id) is not None:
                raise ValueError(f"tenant id {tenant.id} exists already")
            await tx.put(TENANTS, tenant.id, tenant)
            await tx.commit()
        finally:
            await tx.rollback()

    async def list_all(self) -> list[Tenant]:
        return sorted(self._db.committed(TENANTS).values(), key=lambda t: t.slug)


# -- identity as a whole ------------------------------------------------------------------------


class FakeIdentity:
    """Every identity unit of work over one in-memory database, and what tests look at."""

    def __init__(self, db: MemoryDatabase | None = None) -> None:
        self.db = db or MemoryDatabase()
        self.tenants = FakeTenantStore(self.db)

    def uow(self, tenant_id: UUID) -> FakeIdentityUnitOfWork:
        return FakeIdentityUnitOfWork(self, tenant_id)

    def reset_uow(self, tenant_id: UUID) -> FakePasswordResetUnitOfWork:
        return FakePasswordResetUnitOfWork(self, tenant_id)

    # What a test reads: committed state only.

    def user(self, user_id: UUID) -> User | None:
        found: User | None = self.db.committed(USERS).get(user_id)
        return found

    def users(self, tenant_id: UUID) -> dict[str, User]:
        """The tenant's committed users by e-mail."""
        return {u.email: u for u in self.db.committed(USERS).values() if u.tenant_id == tenant_id}

    def sessions(self, tenant_id: UUID) -> list[StoredSession]:
        """The tenant's sessions, oldest first."""
        found = [s for s in self.db.committed(SESSIONS).values() if s.tenant_id == tenant_id]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def refresh_tokens(self, tenant_id: UUID) -> list[StoredRefreshToken]:
        """The tenant's refresh tokens, oldest first."""
        found = [t for t in self.db.committed(REFRESH_TOKENS).values() if t.tenant_id == tenant_id]
        return sorted(found, key=lambda t: (t.issued_at, t.id))

    def counters(self) -> dict[str, CounterRow]:
        """Every attempt counter by its plain key (the SQL table keeps only a keyed digest)."""
        return {str(key): row for key, row in self.db.committed(COUNTERS).items()}

    def resets(self, tenant_id: UUID) -> list[PasswordResetRecord]:
        found = [r for r in self.db.committed(RESETS).values() if r.tenant_id == tenant_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    def queued_mail(self) -> list[QueuedResetMail]:
        return self.db.log(RESET_MAIL)

    def state(self) -> dict[str, object]:
        """Every committed row and log entry: compare before and after a refused request."""
        tables = (TENANTS, USERS, SESSIONS, REFRESH_TOKENS, COUNTERS, RESETS)
        state: dict[str, object] = {t: dict(self.db.committed(t)) for t in tables}
        state[RESET_MAIL] = self.queued_mail()
        return state

    @property
    def commits(self) -> int:
        return self.db.commits

    def seed(self, *rows: Tenant | User) -> None:
        """Tenants and users committed before the test starts (no lock, no check)."""
        for row in rows:
            self.db.seed(TENANTS if isinstance(row, Tenant) else USERS, row.id, row)


# -- outside collaborators ----------------------------------------------------------------------


class FakePasswordHasher:
    """Salted SHA-256: instant, yet only the right password verifies.

    ``version`` plays the part of argon2's parameters: a hash made under another version needs
    a rehash. It counts its calls, so a test can tell whether a password was checked at all.
    """

    PREFIX = "fake"

    def __init__(self, version: int = 2) -> None:
        self.version = version
        self.hashed = 0
        self.verified = 0
        self.burned = 0

    def _digest(self, version: int, salt: str, password: str) -> str:
        return hashlib.sha256(f"{version}${salt}${password}".encode()).hexdigest()

    def _parse(self, password_hash: str) -> tuple[int, str, str] | None:
        parts = password_hash.split("$")
        if len(parts) != 4 or parts[0] != self.PREFIX or not parts[1].isdigit():
            return None
        return int(parts[1]), parts[2], parts[3]

    async def hash(self, password: str) -> str:
        self.hashed += 1
        salt = secrets.token_hex(8)
        return f"{self.PREFIX}${self.version}${salt}${self._digest(self.version, salt, password)}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        parsed = self._parse(password_hash)
        if parsed is None:
            return False
        version, salt, digest = parsed
        return hmac.compare_digest(digest, self._digest(version, salt, password))

    async def burn(self, password: str) -> None:
        self.burned += 1

    def needs_rehash(self, password_hash: str) -> bool:
        parsed = self._parse(password_hash)
        return parsed is not None and parsed[0] != self.version


class FakeAccessTokenCodec:
    """Opaque tokens it remembers issuing, valid for ``lifetime_seconds`` of the test's clock."""

    def __init__(self, clock: Clock, lifetime_seconds: int = 900) -> None:
        self._clock = clock
        self.lifetime_seconds = lifetime_seconds
        self._issued: dict[str, AccessClaims] = {}
        self._ids = itertools.count(1)

    def issue(self, tenant_id: UUID, user_id: UUID, role: Role, session_id: UUID) -> str:
        token_id = f"jti-{next(self._ids)}"
        expires_at = self._clock.now() + timedelta(seconds=self.lifetime_seconds)
        claims = AccessClaims(tenant_id, user_id, role, session_id, token_id, expires_at)
        token = f"access.{token_id}"
        self._issued[token] = claims
        return token

    def verify(self, token: str) -> AccessClaims:
        claims = self._issued.get(token)
        if claims is None:
            raise InvalidToken("the access token is not valid")
        if claims.expires_at <= self._clock.now():
            raise InvalidToken("the access token has expired")
        return claims

    def claims(self, token: str) -> AccessClaims:
        """What a token says, expired or not (for a test's assertions)."""
        return self._issued[token]


class FakeMailer:
    """Keeps every message it is handed, in order.

    Like the e-mail a real mailer builds, a header may not contain a line break: a message whose
    recipient or subject has one is refused and not kept.
    """

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []

    async def send(self, message: MailMessage) -> None:
        for header in (message.to, message.subject):
            if "\n" in header or "\r" in header:
                raise ValueError("Header values may not contain linefeed or carriage return")
        self.sent.append(message)
