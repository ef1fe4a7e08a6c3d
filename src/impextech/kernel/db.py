"""Transactions with a tenant context: the second wall behind the application's own scoping.

Every transaction starts with ``set_config('app.tenant_id', …, true)``. The ``true`` makes the
setting transaction-local, so a pooled connection can never carry one request's tenant into the
next; row-level security reads it and, when it is empty, shows and accepts no row at all.

Connections come from psycopg's own pool (see docs/decisions/0005): the request path talks to
PostgreSQL through psycopg directly, with rows as named tuples.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, LiteralString, Self, TypeAlias
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool

Connection: TypeAlias = AsyncConnection[Any]

TENANT_SETTING = "app.tenant_id"
_SET_TENANT = f"SELECT set_config('{TENANT_SETTING}', %s, true)"


def make_pool(conninfo: str, *, size: int = 10, timeout: float = 10.0) -> AsyncConnectionPool:
    """A pool over any libpq connection string, multi-host ones included; opened on first use."""
    return AsyncConnectionPool(
        conninfo,
        min_size=min(2, size),
        max_size=size,
        timeout=timeout,
        max_lifetime=1800,
        kwargs={"row_factory": namedtuple_row},
        open=False,
        name="impextech",
    )


class Database:
    """The application's database: every unit of work runs in one transaction."""

    def __init__(self, pool: AsyncConnectionPool, conninfo: str = "") -> None:
        self.pool = pool
        self._conninfo = conninfo
        self._opened = False
        self._opening = asyncio.Lock()

    @classmethod
    def connect(cls, conninfo: str, *, size: int = 10) -> Database:
        return cls(make_pool(conninfo, size=size), conninfo)

    @property
    def conninfo(self) -> str:
        """The connection string, for the few libraries that open connections of their own."""
        if not self._conninfo:
            raise ValueError("this database was built from a pool without its connection string")
        return self._conninfo

    @property
    def size(self) -> int:
        return self.pool.max_size

    async def _ensure_open(self) -> None:
        if not self._opened:
            async with self._opening:
                if not self._opened:
                    await self.pool.open(wait=False)
                    self._opened = True

    async def _checkout(
        self, tenant_id: UUID | None
    ) -> tuple[AbstractAsyncContextManager[Connection], Connection]:
        await self._ensure_open()
        holder = self.pool.connection()
        conn = await holder.__aenter__()
        try:
            # Always set it, so the transaction is open and an absent tenant means "none".
            await conn.execute(_SET_TENANT, (str(tenant_id) if tenant_id else "",))
        except BaseException as exc:
            await holder.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return holder, conn

    @asynccontextmanager
    async def transaction(self, tenant_id: UUID | None) -> AsyncIterator[Connection]:
        """A transaction that commits when the block ends normally and rolls back if it raises."""
        holder, conn = await self._checkout(tenant_id)
        try:
            yield conn
        except BaseException as exc:
            await _finish(holder, conn, exc, commit=False)
            raise
        await _finish(holder, conn, None, commit=True)

    async def execute_once(
        self,
        tenant_id: UUID | None,
        query: LiteralString,
        params: Sequence[Any] | Mapping[str, Any],
        *,
        durable: bool = True,
    ) -> Any | None:
        """One statement in its own tenant transaction, in a single round trip; its first row.

        The tenant setting, the statement and the commit travel together in pipeline mode.
        ``durable=False`` lets the commit return before its WAL is flushed: for bookkeeping
        whose loss in a crash is harmless, and which any later durable commit flushes anyway.
        """
        await self._ensure_open()
        async with self.pool.connection() as conn:
            try:
                async with conn.pipeline():
                    await conn.execute(_SET_TENANT, (str(tenant_id) if tenant_id else "",))
                    if not durable:
                        await conn.execute("SET LOCAL synchronous_commit = off")
                    cur = await conn.execute(query, params)
                    await conn.commit()
                return await cur.fetchone() if cur.description is not None else None
            except BaseException:
                if not conn.closed:
                    await conn.rollback()
                raise

    async def dispose(self) -> None:
        if self._opened:
            await self.pool.close()
            self._opened = False


async def _finish(
    holder: AbstractAsyncContextManager[Connection],
    conn: Connection,
    exc: BaseException | None,
    *,
    commit: bool,
) -> None:
    try:
        if not conn.closed:
            await (conn.commit() if commit and exc is None else conn.rollback())
    except BaseException as failure:
        await holder.__aexit__(type(failure), failure, failure.__traceback__)
        raise
    await holder.__aexit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


class SqlUnitOfWork:
    """Base of the contexts' SQL units of work: one transaction, committed only on request.

    Leaving the block without ``commit()`` rolls everything back (a rollback after a commit is a
    no-op), so a refused request changes nothing.
    """

    conn: Connection

    def __init__(self, database: Database, tenant_id: UUID | None) -> None:
        self._database = database
        self.tenant_id = tenant_id

    def _bind(self, conn: Connection) -> None:
        """Subclasses build their stores over ``conn`` here."""

    async def __aenter__(self) -> Self:
        self._holder, self.conn = await self._database._checkout(self.tenant_id)
        self._bind(self.conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _finish(self._holder, self.conn, exc, commit=False)

    async def commit(self) -> None:
        # Anything the block runs after this starts a new transaction with no tenant set, so
        # RLS fails closed; use cases commit last.
        await self.conn.commit()
