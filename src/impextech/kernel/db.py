"""Transactions with a tenant context: the second wall behind the application's own scoping.

Every transaction on tenant-owned data starts with ``set_config('app.tenant_id', …, true)``.
The ``true`` makes the setting transaction-local, so a pooled connection can never carry one
request's tenant into the next; row-level security reads it and, when it is absent, shows and
accepts no row at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self
from uuid import UUID

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

TENANT_SETTING = "app.tenant_id"
_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")


def make_engine(conninfo: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An async engine over any libpq connection string, multi-host ones included.

    The string goes to libpq untouched (SQLAlchemy's URL parser would mangle
    ``host=a,b target_session_attrs=read-write``).
    """

    async def connect() -> psycopg.AsyncConnection[object]:
        return await psycopg.AsyncConnection.connect(conninfo)

    return create_async_engine(
        "postgresql+psycopg://",
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


class Database:
    """The application's database: every unit of work runs in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def transaction(self, tenant_id: UUID | None) -> AsyncIterator[AsyncConnection]:
        """Open a transaction; with ``tenant_id`` set, RLS shows that tenant's rows only.

        Commits when the block ends normally, rolls back when it raises.
        """
        async with self.engine.begin() as conn:
            if tenant_id is not None:
                await conn.execute(_SET_TENANT, {"tenant": str(tenant_id)})
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


class SqlUnitOfWork:
    """Base of the contexts' SQL units of work: one transaction, committed only on request.

    Leaving the block without ``commit()`` rolls everything back, so a refused request
    changes nothing.
    """

    conn: AsyncConnection

    def __init__(self, database: Database, tenant_id: UUID | None) -> None:
        self._database = database
        self.tenant_id = tenant_id
        self._committed = False

    async def _open(self) -> None:
        self.conn = await self._database.engine.connect()
        await self.conn.begin()
        if self.tenant_id is not None:
            await self.conn.execute(_SET_TENANT, {"tenant": str(self.tenant_id)})
        self._bind(self.conn)

    def _bind(self, conn: AsyncConnection) -> None:
        """Subclasses build their stores over ``conn`` here."""

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def commit(self) -> None:
        await self.conn.commit()
        self._committed = True

    async def _close(self) -> None:
        try:
            if not self._committed:
                await self.conn.rollback()
        finally:
            await self.conn.close()
