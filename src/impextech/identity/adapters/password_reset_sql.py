"""PostgreSQL store for password reset tokens, and the unit of work the reset use cases run in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from impextech.identity.adapters.mail_job import JobMailQueue
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.domain.password_reset import PasswordResetRecord
from impextech.jobs.api import JobScheduling
from impextech.kernel.db import Connection, Database

_SELECT = (
    "SELECT id, tenant_id, user_id, token_hash, created_at, expires_at, used_at"
    " FROM password_reset_tokens"
)


def _record(row: Any) -> PasswordResetRecord:
    return PasswordResetRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        token_hash=bytes(row.token_hash),
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


class SqlPasswordResetStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def add(
        self, reset_id: UUID, user_id: UUID, token_hash: bytes, now: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO password_reset_tokens"
            " (tenant_id, id, user_id, token_hash, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (self._tenant_id, reset_id, user_id, token_hash, now, expires_at),
        )

    async def get(self, reset_id: UUID) -> PasswordResetRecord | None:
        cur = await self._conn.execute(
            _SELECT + " WHERE tenant_id = %s AND id = %s",
            (self._tenant_id, reset_id),
        )
        row = await cur.fetchone()
        return _record(row) if row else None

    async def find(self, token_hash: bytes) -> PasswordResetRecord | None:
        cur = await self._conn.execute(
            _SELECT + " WHERE tenant_id = %s AND token_hash = %s",
            (self._tenant_id, token_hash),
        )
        row = await cur.fetchone()
        return _record(row) if row else None

    async def use(self, reset_id: UUID, now: datetime) -> bool:
        cur = await self._conn.execute(
            "UPDATE password_reset_tokens SET used_at = %s"
            " WHERE tenant_id = %s AND id = %s AND used_at IS NULL AND expires_at > %s",
            (now, self._tenant_id, reset_id, now),
        )
        return cur.rowcount == 1

    async def retire_user(self, user_id: UUID, now: datetime) -> int:
        cur = await self._conn.execute(
            "UPDATE password_reset_tokens SET used_at = %s"
            " WHERE tenant_id = %s AND user_id = %s AND used_at IS NULL",
            (now, self._tenant_id, user_id),
        )
        return cur.rowcount


class SqlPasswordResetUnitOfWork(SqlIdentityUnitOfWork):
    resets: SqlPasswordResetStore
    mail: JobMailQueue

    def __init__(self, database: Database, tenant_id: UUID, scheduling: JobScheduling) -> None:
        super().__init__(database, tenant_id)
        self._scheduling = scheduling

    def _bind(self, conn: Connection) -> None:
        super()._bind(conn)
        assert self.tenant_id is not None
        self.resets = SqlPasswordResetStore(conn, self.tenant_id)
        self.mail = JobMailQueue(self._scheduling.in_transaction(conn, self.tenant_id))
