"""PostgreSQL side of the bulk import: batch upserts by SKU, and queueing the import job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.rows import tuple_row

from impextech.catalog.adapters.sql import COLUMNS, product_from_row, product_params
from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product
from impextech.catalog.service.imports import ChangedProducts
from impextech.jobs.api import JobKind, JobScheduler
from impextech.kernel.db import Connection, Database, SqlUnitOfWork

_PLACEHOLDERS = ", ".join(f"%({c.strip()})s" for c in COLUMNS.split(","))
_INSERT = f"INSERT INTO products ({COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608 (constants)
_UPDATE = (
    "UPDATE products SET name = %(name)s, description = %(description)s,"
    " category = %(category)s, price_amount = %(price_amount)s, currency = %(currency)s,"
    " stock = %(stock)s, version = %(version)s, updated_at = %(updated_at)s"
    " WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
)
# Rows are locked in primary-key order, like every other multi-row lock in the platform.
_LOCK = (
    f"SELECT {COLUMNS} FROM products"  # noqa: S608 (constants)
    " WHERE tenant_id = %s AND sku = ANY(%s) ORDER BY id FOR UPDATE"
)


class SqlImportProductStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def lock_by_sku(self, skus: Sequence[str]) -> dict[str, Product]:
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(_LOCK, (self._tenant_id, list(skus)))
        return {p.sku: p for p in map(product_from_row, await cur.fetchall())}

    async def insert(self, products: Sequence[Product]) -> None:
        if not products:
            return
        # In SKU order: two imports racing for the same new SKUs then wait on each other in one
        # order and never deadlock.
        ordered = sorted(products, key=lambda p: p.sku)
        try:
            async with self._conn.cursor() as cur:
                await cur.executemany(_INSERT, [product_params(p) for p in ordered])
        except UniqueViolation as exc:
            if exc.diag.constraint_name != "products_tenant_sku":
                raise
            # Listed by someone else since the batch looked: the whole batch rolls back and the
            # job's next attempt finds the product and treats that row like any other.
            raise SkuTaken(
                "a SKU in this batch was listed meanwhile; the next attempt sees it"
            ) from exc

    async def update(self, products: Sequence[Product]) -> None:
        if products:
            async with self._conn.cursor() as cur:
                await cur.executemany(_UPDATE, [product_params(p) for p in products])


ChangesFactory = Callable[[Connection, UUID], ChangedProducts]


class SqlImportUnitOfWork(SqlUnitOfWork):
    """One batch: its products and the announcements of what it wrote, in one transaction."""

    products: SqlImportProductStore
    changes: ChangedProducts

    def __init__(self, database: Database, tenant_id: UUID, changes: ChangesFactory) -> None:
        super().__init__(database, tenant_id)
        self._changes = changes

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.products = SqlImportProductStore(conn, self.tenant_id)
        self.changes = self._changes(conn, self.tenant_id)


class SchedulerImportJobs:
    def __init__(self, scheduler: JobScheduler, kind: JobKind) -> None:
        self._scheduler = scheduler
        self._kind = kind

    async def enqueue_import(self, payload: dict[str, str], created_by: UUID) -> UUID:
        return await self._scheduler.enqueue(self._kind, payload, created_by=created_by)


SchedulerFactory = Callable[[Connection, UUID], JobScheduler]


class SqlSubmitUnitOfWork(SqlUnitOfWork):
    """The request's transaction: the import job exists exactly when it commits."""

    jobs: SchedulerImportJobs

    def __init__(
        self, database: Database, tenant_id: UUID, scheduler: SchedulerFactory, kind: JobKind
    ) -> None:
        super().__init__(database, tenant_id)
        self._scheduler = scheduler
        self._kind = kind

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.jobs = SchedulerImportJobs(self._scheduler(conn, self.tenant_id), self._kind)
