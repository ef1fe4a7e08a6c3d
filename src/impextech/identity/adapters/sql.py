"""PostgreSQL stores for tenants, users and sessions (plain SQL, run under the tenant's RLS)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from impextech.identity.domain.model import (
    RefreshTokenRecord,
    Tenant,
    TenantStatus,
    User,
    UserStatus,
)
from impextech.identity.service.ports import UserPage
from impextech.kernel.db import Database, SqlUnitOfWork
from impextech.kernel.domain.errors import EmailTaken, SlugTaken
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
    def __init__(self, conn: AsyncConnection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def add(self, user: User) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    text(
                        f"INSERT INTO users ({_USER_COLUMNS}) VALUES (:id, :tenant_id, :email,"
                        " :display_name, :role, :status, :password_hash, :created_at, :updated_at)"
                    ),
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
        except IntegrityError as exc:
            if "users_tenant_email" in str(exc.orig):
                raise EmailTaken() from None
            raise

    async def get(self, user_id: UUID) -> User | None:
        # The explicit tenant filter is the application's wall; RLS is the second one.
        row = (
            await self._conn.execute(
                text(f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = :t AND id = :id"),
                {"t": self._tenant_id, "id": user_id},
            )
        ).first()
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (
            await self._conn.execute(
                text(
                    f"SELECT {_USER_COLUMNS} FROM users"
                    " WHERE tenant_id = :t AND lower(email) = lower(:email)"
                ),
                {"t": self._tenant_id, "email": email},
            )
        ).first()
        return _user(row) if row else None

    async def email_exists(self, email: str) -> bool:
        return await self.get_by_email(email) is not None

    async def update(self, user: User) -> None:
        await self._conn.execute(
            text(
                "UPDATE users SET display_name = :display_name, role = :role, status = :status,"
                " password_hash = :password_hash, updated_at = :updated_at"
                " WHERE tenant_id = :t AND id = :id"
            ),
            {
                "t": self._tenant_id,
                "id": user.id,
                "display_name": user.display_name,
                "role": user.role.value,
                "status": user.status.value,
                "password_hash": user.password_hash,
                "updated_at": user.updated_at,
            },
        )

    async def list(
        self,
        *,
        role: Role | None,
        status: UserStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> UserPage:
        clauses = ["tenant_id = :t"]
        params: dict[str, Any] = {"t": self._tenant_id, "limit": limit + 1}
        if role is not None:
            clauses.append("role = :role")
            params["role"] = role.value
        if status is not None:
            clauses.append("status = :status")
            params["status"] = status.value
        if after is not None:
            clauses.append("(created_at, id) > (:after_ts, :after_id)")
            params["after_ts"], params["after_id"] = after
        rows = (
            await self._conn.execute(
                text(
                    f"SELECT {_USER_COLUMNS} FROM users WHERE {' AND '.join(clauses)}"
                    " ORDER BY created_at, id LIMIT :limit"
                ),
                params,
            )
        ).all()
        users = [_user(r) for r in rows[:limit]]
        more = len(rows) > limit
        return UserPage(users, (users[-1].created_at, users[-1].id) if more and users else None)


class SqlSessionStore:
    def __init__(self, conn: AsyncConnection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def create_session(self, session_id: UUID, user_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            text(
                "INSERT INTO auth_sessions (tenant_id, id, user_id, created_at)"
                " VALUES (:t, :id, :user_id, :now)"
            ),
            {"t": self._tenant_id, "id": session_id, "user_id": user_id, "now": now},
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
            text(
                "INSERT INTO refresh_tokens"
                " (tenant_id, id, session_id, user_id, token_hash, issued_at, expires_at)"
                " VALUES (:t, gen_random_uuid(), :sid, :uid, :hash, :now, :exp)"
            ),
            {
                "t": self._tenant_id,
                "sid": session_id,
                "uid": user_id,
                "hash": token_hash,
                "now": now,
                "exp": expires_at,
            },
        )

    async def find_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None:
        row = (
            await self._conn.execute(
                text(
                    "SELECT r.id, r.tenant_id, r.session_id, r.user_id, r.expires_at, r.used_at,"
                    " s.revoked_at IS NOT NULL AS revoked"
                    " FROM refresh_tokens r JOIN auth_sessions s"
                    "   ON s.tenant_id = r.tenant_id AND s.id = r.session_id"
                    " WHERE r.tenant_id = :t AND r.token_hash = :hash"
                    " FOR UPDATE OF r"
                ),
                {"t": self._tenant_id, "hash": token_hash},
            )
        ).first()
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
        )

    async def mark_used(self, token_id: UUID, now: datetime) -> bool:
        result = await self._conn.execute(
            text(
                "UPDATE refresh_tokens SET used_at = :now"
                " WHERE tenant_id = :t AND id = :id AND used_at IS NULL RETURNING id"
            ),
            {"t": self._tenant_id, "id": token_id, "now": now},
        )
        return result.first() is not None

    async def revoke_session(self, session_id: UUID, now: datetime, reason: str) -> None:
        await self._conn.execute(
            text(
                "UPDATE auth_sessions SET revoked_at = :now, revoked_reason = :reason"
                " WHERE tenant_id = :t AND id = :id AND revoked_at IS NULL"
            ),
            {"t": self._tenant_id, "id": session_id, "now": now, "reason": reason},
        )

    async def revoke_user_sessions(self, user_id: UUID, now: datetime, reason: str) -> int:
        result = await self._conn.execute(
            text(
                "UPDATE auth_sessions SET revoked_at = :now, revoked_reason = :reason"
                " WHERE tenant_id = :t AND user_id = :uid AND revoked_at IS NULL RETURNING id"
            ),
            {"t": self._tenant_id, "uid": user_id, "now": now, "reason": reason},
        )
        return len(result.all())

    async def session_is_live(self, session_id: UUID, user_id: UUID) -> tuple[Role, bool] | None:
        row = (
            await self._conn.execute(
                text(
                    "SELECT u.role, (s.revoked_at IS NULL AND u.status = 'active') AS live"
                    " FROM auth_sessions s JOIN users u"
                    "   ON u.tenant_id = s.tenant_id AND u.id = s.user_id"
                    " WHERE s.tenant_id = :t AND s.id = :sid AND s.user_id = :uid"
                ),
                {"t": self._tenant_id, "sid": session_id, "uid": user_id},
            )
        ).first()
        return (Role(row.role), bool(row.live)) if row else None


class SqlIdentityUnitOfWork(SqlUnitOfWork):
    users: SqlUserStore
    sessions: SqlSessionStore

    def _bind(self, conn: AsyncConnection) -> None:
        assert self.tenant_id is not None
        self.users = SqlUserStore(conn, self.tenant_id)
        self.sessions = SqlSessionStore(conn, self.tenant_id)


def _tenant(row: Any) -> Tenant:
    return Tenant(
        id=row.id,
        slug=row.slug,
        name=row.name,
        status=TenantStatus(row.status),
        created_at=row.created_at,
    )


class SqlTenantStore:
    """The tenant registry: global on purpose (it is what tenants are resolved from)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_by_slug(self, slug: str) -> Tenant | None:
        async with self._db.transaction(None) as conn:
            row = (
                await conn.execute(
                    text("SELECT id, slug, name, status, created_at FROM tenants WHERE slug = :s"),
                    {"s": slug},
                )
            ).first()
        return _tenant(row) if row else None

    async def get(self, tenant_id: UUID) -> Tenant | None:
        async with self._db.transaction(None) as conn:
            row = (
                await conn.execute(
                    text("SELECT id, slug, name, status, created_at FROM tenants WHERE id = :id"),
                    {"id": tenant_id},
                )
            ).first()
        return _tenant(row) if row else None

    async def add(self, tenant: Tenant) -> None:
        try:
            async with self._db.transaction(None) as conn:
                await conn.execute(
                    text(
                        "INSERT INTO tenants (id, slug, name, status, created_at)"
                        " VALUES (:id, :slug, :name, :status, :created_at)"
                    ),
                    {
                        "id": tenant.id,
                        "slug": tenant.slug,
                        "name": tenant.name,
                        "status": tenant.status.value,
                        "created_at": tenant.created_at,
                    },
                )
        except IntegrityError:
            raise SlugTaken(f"the slug {tenant.slug!r} is taken") from None
