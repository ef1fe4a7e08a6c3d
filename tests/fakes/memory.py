"""An in-memory database under the fakes: committed rows, private writes, row locks.

A ``MemoryTransaction`` reads the committed rows overlaid with its own writes, and publishes its
writes only on ``commit``; ``rollback`` drops them. Writing a row (or a unique key) takes a lock
held until the transaction ends, and a second transaction asking for the same lock waits, as a
second writer waits on a PostgreSQL row lock: that is what makes a version check made after the
lock see the first writer's outcome.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Hashable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Self
from uuid import UUID

_GONE = object()


class TransactionClosed(RuntimeError):
    """Used after commit or rollback: the SQL units of work fail closed there too."""


class MemoryDatabase:
    def __init__(self) -> None:
        self._tables: dict[str, dict[Hashable, Any]] = {}
        self._logs: dict[str, list[Any]] = {}
        self._locks: dict[tuple[str, Hashable], MemoryTransaction] = {}
        self._released: asyncio.Event | None = None
        self._ids = itertools.count(1)
        self.commits = 0

    def begin(self) -> MemoryTransaction:
        return MemoryTransaction(self)

    def committed(self, table: str) -> Mapping[Hashable, Any]:
        return MappingProxyType(self._tables.setdefault(table, {}))

    def seed(self, table: str, key: Hashable, row: Any) -> None:
        """A committed row written outside any transaction (a test's starting state)."""
        self._tables.setdefault(table, {})[key] = row

    def log(self, name: str) -> list[Any]:
        """A copy of what committed transactions appended to the log ``name``, in order."""
        return list(self._logs.get(name, []))

    def next_id(self) -> int:
        """A fresh integer, like a sequence: never handed out twice, even if rolled back."""
        return next(self._ids)

    def locked(self, table: str, key: Hashable) -> bool:
        return (table, key) in self._locks

    async def _acquire(self, tx: MemoryTransaction, table: str, key: Hashable) -> None:
        while (holder := self._locks.get((table, key))) is not None and holder is not tx:
            if self._released is None:
                self._released = asyncio.Event()
            await self._released.wait()
        self._locks[(table, key)] = tx

    def _release(self, tx: MemoryTransaction) -> None:
        for lock in [lock for lock, holder in self._locks.items() if holder is tx]:
            del self._locks[lock]
        if self._released is not None:
            self._released.set()
            self._released = None

    def _publish(self, tx: MemoryTransaction) -> None:
        for table, writes in tx._writes.items():
            rows = self._tables.setdefault(table, {})
            for key, row in writes.items():
                if row is _GONE:
                    rows.pop(key, None)
                else:
                    rows[key] = row
        for name, entries in tx._appended.items():
            self._logs.setdefault(name, []).extend(entries)
        self.commits += 1


class MemoryTransaction:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self._writes: dict[str, dict[Hashable, Any]] = {}
        self._appended: dict[str, list[Any]] = {}
        self._open = True

    @property
    def database(self) -> MemoryDatabase:
        return self._db

    def _check_open(self) -> None:
        if not self._open:
            raise TransactionClosed("this transaction has ended")

    def get(self, table: str, key: Hashable) -> Any | None:
        self._check_open()
        mine = self._writes.get(table, {})
        if key in mine:
            row = mine[key]
            return None if row is _GONE else row
        return self._db.committed(table).get(key)

    def rows(self, table: str) -> Iterator[Any]:
        """Every row this transaction sees in ``table``, in no promised order."""
        self._check_open()
        mine = self._writes.get(table, {})
        for key, row in self._db.committed(table).items():
            if key not in mine:
                yield row
        for row in mine.values():
            if row is not _GONE:
                yield row

    async def lock(self, table: str, key: Hashable) -> None:
        """Wait until no other transaction holds ``(table, key)``, then hold it until the end."""
        self._check_open()
        await self._db._acquire(self, table, key)
        self._check_open()

    async def put(self, table: str, key: Hashable, row: Any) -> None:
        await self.lock(table, key)
        self._writes.setdefault(table, {})[key] = row

    async def delete(self, table: str, key: Hashable) -> None:
        await self.lock(table, key)
        self._writes.setdefault(table, {})[key] = _GONE

    def append(self, name: str, entry: Any) -> None:
        self._check_open()
        self._appended.setdefault(name, []).append(entry)

    async def commit(self) -> None:
        self._check_open()
        self._db._publish(self)
        self._end()

    async def rollback(self) -> None:
        if self._open:
            self._end()

    def _end(self) -> None:
        self._open = False
        self._writes = {}
        self._appended = {}
        self._db._release(self)


class MemoryUnitOfWork:
    """The shell of every fake unit of work: one transaction, committed only on request.

    Leaving the block without ``commit()`` rolls back, as the SQL units of work do; subclasses
    build their stores over the transaction in ``_bind``.
    """

    def __init__(self, db: MemoryDatabase, tenant_id: UUID) -> None:
        self._db = db
        self.tenant_id = tenant_id
        self._tx: MemoryTransaction | None = None

    @property
    def transaction(self) -> MemoryTransaction:
        assert self._tx is not None, "outside its block"
        return self._tx

    def _bind(self, tx: MemoryTransaction) -> None:
        """Subclasses build their stores over ``tx`` here."""

    async def __aenter__(self) -> Self:
        self._tx = self._db.begin()
        self._bind(self._tx)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.transaction.rollback()

    async def commit(self) -> None:
        await self.transaction.commit()
