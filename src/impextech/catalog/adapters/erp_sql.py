"""PostgreSQL side of the ERP sync: the product with its acknowledged version, and the mark."""

from __future__ import annotations

from uuid import UUID

from psycopg.rows import tuple_row

from impextech.catalog.adapters.sql import COLUMNS, product_from_row
from impextech.catalog.domain.model import Product
from impextech.kernel.db import Connection, SqlUnitOfWork

# COLUMNS is a constant; every value is a bound parameter.
_GET = (
    f"SELECT {COLUMNS}, erp_synced_version FROM products"  # noqa: S608
    " WHERE tenant_id = %s AND id = %s"
)
# GREATEST: pushes of two versions may finish out of order; the mark only moves forward.
_RECORD = (
    "UPDATE products SET erp_synced_version = GREATEST(COALESCE(erp_synced_version, 0), %s)"
    " WHERE tenant_id = %s AND id = %s"
)


class SqlErpSyncStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def get_with_synced_version(self, product_id: UUID) -> tuple[Product, int | None] | None:
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(_GET, (self._tenant_id, product_id))
        row = await cur.fetchone()
        if row is None:
            return None
        synced: int | None = row[-1]
        return product_from_row(row[:-1]), synced

    async def record_synced(self, product_id: UUID, version: int) -> None:
        await self._conn.execute(_RECORD, (version, self._tenant_id, product_id))


class SqlErpSyncUnitOfWork(SqlUnitOfWork):
    erp_sync: SqlErpSyncStore

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.erp_sync = SqlErpSyncStore(conn, self.tenant_id)
