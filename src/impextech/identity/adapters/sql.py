"""PostgreSQL stores for tenants, users and sessions (plain SQL, run under the tenant's RLS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg.errors import UniqueViolation

from impextech.identity.adapters.rate_limit import PROCESS_ATTEMPT_KEY, SqlAttemptCounter
from impextech.identity.domain.errors import EmailTaken, SlugTaken
from impextech.identity.domain.model import (
    RefreshTokenRecord,
    Tenant,
    TenantStatus,
    User,
    UserStatus,
)
from impextech.identity.service.ports import UserPage
from impextech.kernel.db import Connection, Database, SqlUnitOfWork
from impextech.kernel.domain.principal import Role

_USER_COLUMNS = (
    "id, tenant_id, email, display_name, role, status, password_hash, created_at, updated_at"
)


def _user(row: Any) -> User:
    return User(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        status=UserStatus(row.status),
        password_hash=row.password_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlUserStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def add(self, user: User) -> None:
        try:
            async with self._conn.transaction():  # a savepoint: the caller's work survives
                await self._conn.execute(
                    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (%(id)s, %(tenant_id)s,"
                    " %(email)s, %(display_name)s, %(role)s, %(status)s, %(password_hash)s,"
                    " %(created_at)s, %(updated_at)s)",
                    {
                        "id": user.id,
                        "tenant_id": user.tenant_id,
                        "email": user.email,
                        "display_name": user.display_name,
                        "role": user.role.value,
                        "status": user.status.value,
                        "password_hash": user.password_hash,
                        "created_at": user.created_at,
                        "updated_at": user.updated_at,
                    },
                )
        except UniqueViolation as exc:
            if exc.diag.constraint_name == "users_tenant_email":
                raise EmailTaken() from None
            raise

    async def get(self, user_id: UUID) -> User | None:
        # The explicit tenant filter is the application's wall; RLS is the second one.
        cur = await self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = %s AND id = %s",
            (self._tenant_id, user_id),
        )
        row = await cur.fetchone()
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        cur = await self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = %s AND lower(email) = lower(%s)",
            (self._tenant_id, email),
        )
        row = await cur.fetchone()
        return _user(row) if row else None

    async def email_exists(self, email: str) -> bool:
        return await self.get_by_email(email) is not None

    async def lock(self, user_ids: Sequence[UUID]) -> dict[UUID, User]:
        # ORDER BY id under FOR UPDATE takes the row locks in id order.
        cur = await self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = %s AND id = ANY(%s)"
            " ORDER BY id FOR UPDATE",
            (self._tenant_id, list(user_ids)),
        )
        return {row.id: _user(row) for row in await cur.fetchall()}

    async def count_active_admins(self) -> int:
        cur = await self._conn.execute(
            "SELECT count(*) AS n FROM users"
            " WHERE tenant_id = %s AND role = 'admin' AND status = 'active'",
            (self._tenant_id,),
        )
        row = await cur.fetchone()
        return int(row.n) if row else 0

    async def _set(self, assignment: LiteralString, params: dict[str, Any]) -> User | None:
        cur = await self._conn.execute(
            f"UPDATE users SET {assignment}, updated_at = %(now)s"
            f" WHERE tenant_id = %(t)s AND id = %(id)s RETURNING {_USER_COLUMNS}",
            {"t": self._tenant_id, **params},
        )
        row = await cur.fetchone()
        return _user(row) if row else None

    async def set_display_name(
        self, user_id: UUID, display_name: str, now: datetime
    ) -> User | None:
        return await self._set(
            "display_name = %(value)s", {"id": user_id, "value": display_name, "now": now}
        )

    async def set_role(self, user_id: UUID, role: Role, now: datetime) -> User | None:
        return await self._set("role = %(value)s", {"id": user_id, "value": role.value, "now": now})

    async def set_status(self, user_id: UUID, status: UserStatus, now: datetime) -> User | None:
        return await self._set(
            "status = %(value)s", {"id": user_id, "value": status.value, "now": now}
        )

    async def replace_password_hash(
        self, user_id: UUID, old_hash: str, new_hash: str, now: datetime
    ) -> bool:
        # Compare-and-set: a password change that landed since the caller read the hash wins.
        cur = await self._conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = %s"
            " WHERE tenant_id = %s AND id = %s AND password_hash = %s",
            (new_hash, now, self._tenant_id, user_id, old_hash),
        )
        return cur.rowcount == 1

    async def list(
        self,
        *,
        role: Role | None,
        status: UserStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> UserPage:
        clauses: list[str] = []
        params: dict[str, Any] = {"t": self._tenant_id, "limit": limit + 1}
        if role is not None:
            clauses.append("role = %(role)s")
            params["role"] = role.value
        if status is not None:
            clauses.append("status = %(status)s")
            params["status"] = status.value
        if after is not None:
            clauses.append("(created_at, id) > (%(after_ts)s, %(after_id)s)")
            params["after_ts"], params["after_id"] = after
        cur = await self._conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = %(t)s"
            f"{''.join(f' AND {c}' for c in clauses)}"
            " ORDER BY created_at, id LIMIT %(limit)s",
            params,
        )
        rows = await cur.fetchall()
        users = [_user(r) for r in rows[:limit]]
        more = len(rows) > limit
        return UserPage(users, (users[-1].created_at, users[-1].id) if more and users else None)


class SqlSessionStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def start_session(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
        session_expires_at: datetime,
    ) -> None:
        # One statement, one round trip: the session and its first refresh token.
        await self._conn.execute(
            "WITH session AS ("
            "  INSERT INTO auth_sessions (tenant_id, id, user_id, created_at, expires_at)"
            "  VALUES (%(t)s, %(sid)s, %(uid)s, %(now)s, %(session_exp)s)"
            ") INSERT INTO refresh_tokens"
            " (tenant_id, id, session_id, user_id, token_hash, issued_at, expires_at)"
            " VALUES (%(t)s, gen_random_uuid(), %(sid)s, %(uid)s, %(hash)s, %(now)s, %(exp)s)",
            {
                "t": self._tenant_id,
                "sid": session_id,
                "uid": user_id,
                "hash": token_hash,
                "now": now,
                "exp": expires_at,
                "session_exp": session_expires_at,
            },
        )

    async def add_refresh_token(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: bytes,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO refresh_tokens"
            " (tenant_id, id, session_id, user_id, token_hash, issued_at, expires_at)"
            " VALUES (%s, gen_random_uuid(), %s, %s, %s, %s, %s)",
            (self._tenant_id, session_id, user_id, token_hash, now, expires_at),
        )

    async def find_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        cur = await self._conn.execute(
            "SELECT r.id, r.tenant_id, r.session_id, r.user_id, r.expires_at, r.used_at,"
            " s.revoked_at IS NOT NULL AS revoked, s.expires_at AS session_expires_at"
            " FROM refresh_tokens r JOIN auth_sessions s"
            "   ON s.tenant_id = r.tenant_id AND s.id = r.session_id"
            " WHERE r.tenant_id = %s AND r.token_hash = %s"
            " FOR UPDATE OF r",
            (self._tenant_id, token_hash),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return RefreshTokenRecord(
            id=row.id,
            tenant_id=row.tenant_id,
            session_id=row.session_id,
            user_id=row.user_id,
            expires_at=row.expires_at,
            used_at=row.used_at,
            session_revoked=row.revoked,
            session_expires_at=row.session_expires_at,
        )

    async def mark_used(self, token_id: UUID, now: datetime) -> bool:
        cur = await self._conn.execute(
            "UPDATE refresh_tokens SET used_at = %s"
            " WHERE tenant_id = %s AND id = %s AND used_at IS NULL",
            (now, self._tenant_id, token_id),
        )
        return cur.rowcount == 1

    async def revoke_session(self, session_id: UUID, now: datetime, reason: str) -> None:
        await self._conn.execute(
            "UPDATE auth_sessions SET revoked_at = %s, revoked_reason = %s"
            " WHERE tenant_id = %s AND id = %s AND revoked_at IS NULL",
            (now, reason, self._tenant_id, session_id),
        )

    async def revoke_user_sessions(self, user_id: UUID, now: datetime, reason: str) -> int:
        cur = await self._conn.execute(
            "UPDATE auth_sessions SET revoked_at = %s, revoked_reason = %s"
            " WHERE tenant_id = %s AND user_id = %s AND revoked_at IS NULL",
            (now, reason, self._tenant_id, user_id),
        )
        return cur.rowcount

    async def session_is_live(self, session_id: UUID, user_id: UUID) -> tuple[Role, bool] | None:
        cur = await self._conn.execute(
            "SELECT u.role, (s.revoked_at IS NULL AND u.status = 'active') AS live"
            " FROM auth_sessions s JOIN users u"
            "   ON u.tenant_id = s.tenant_id AND u.id = s.user_id"
            " WHERE s.tenant_id = %s AND s.id = %s AND s.user_id = %s",
            (self._tenant_id, session_id, user_id),
        )
        row = await cur.fetchone()
        return (Role(row.role), bool(row.live)) if row else None

    async def purge_spent(self, before: datetime) -> tuple[int, int]:
        # Tokens first: they reference their session. A used token stays until it expires,
        # so presenting it again is still recognised as reuse for as long as it could work.
        ended = (
            "SELECT id FROM auth_sessions WHERE tenant_id = %(t)s"
            " AND (revoked_at < %(before)s OR expires_at < %(before)s)"
        )
        params = {"t": self._tenant_id, "before": before}
        tokens = await self._conn.execute(
            "DELETE FROM refresh_tokens WHERE tenant_id = %(t)s"
            f" AND (expires_at < %(before)s OR session_id IN ({ended}))",
            params,
        )
        sessions = await self._conn.execute(
            "DELETE FROM auth_sessions WHERE tenant_id = %(t)s"
            " AND (revoked_at < %(before)s OR expires_at < %(before)s)",
            params,
        )
        return tokens.rowcount, sessions.rowcount


class SqlIdentityUnitOfWork(SqlUnitOfWork):
    users: SqlUserStore
    sessions: SqlSessionStore
    attempts: SqlAttemptCounter

    def __init__(
        self, database: Database, tenant_id: UUID | None, attempt_key: bytes | None = None
    ) -> None:
        """``attempt_key`` (rate_limit.attempt_key of the server secret) keys the counters'
        digests; every web process must share it. Without one, a random key serves this
        process only: fine for commands that count nothing, wrong for several web processes."""
        super().__init__(database, tenant_id)
        self._attempt_key = attempt_key or PROCESS_ATTEMPT_KEY

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.users = SqlUserStore(conn, self.tenant_id)
        self.sessions = SqlSessionStore(conn, self.tenant_id)
        self.attempts = SqlAttemptCounter(conn, self._attempt_key)


def _tenant(row: Any) -> Tenant:
    return Tenant(
        id=row.id,
        slug=row.slug,
        name=row.name,
        status=TenantStatus(row.status),
        created_at=row.created_at,
    )


_TENANT_COLUMNS = "id, slug, name, status, created_at"


class SqlTenantStore:
    """The tenant registry: global on purpose (it is what tenants are resolved from)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def _one(self, where: str, value: object) -> Tenant | None:
        async with self._db.transaction(None) as conn:
            cur = await conn.execute(
                f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE {where} = %s", (value,)
            )
            row = await cur.fetchone()
        return _tenant(row) if row else None

    async def get_by_slug(self, slug: str) -> Tenant | None:
        return await self._one("slug", slug)

    async def get(self, tenant_id: UUID) -> Tenant | None:
        return await self._one("id", tenant_id)

    async def list_all(self) -> list[Tenant]:
        async with self._db.transaction(None) as conn:
            cur = await conn.execute(f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY slug")
            return [_tenant(row) for row in await cur.fetchall()]

    async def add(self, tenant: Tenant) -> None:
        try:
            async with self._db.transaction(None) as conn:
                await conn.execute(
                    f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                    (tenant.id, tenant.slug, tenant.name, tenant.status.value, tenant.created_at),
                )
        except UniqueViolation:
            raise SlugTaken(f"the slug {tenant.slug!r} is taken") from None
