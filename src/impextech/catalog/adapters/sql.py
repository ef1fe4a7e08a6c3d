"""PostgreSQL product store: full-text search, filters and keyset pagination under RLS."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from psycopg.rows import tuple_row

from impextech.catalog.adapters.erp_outbox import JobErpOutbox
from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product, ProductSort, ProductStatus
from impextech.catalog.service.ports import ProductPage, ProductQuery
from impextech.jobs.api import JobScheduling
from impextech.kernel.db import Connection, Database, SqlUnitOfWork
from impextech.kernel.domain.money import Money

COLUMNS = (
    "id, tenant_id, seller_id, sku, name, description, category, price_amount, currency,"
    " stock, status, version, created_at, updated_at"
)

# sort -> (ORDER BY, keyset comparison, the column the cursor remembers)
_SORTS: dict[ProductSort, tuple[str, str, str]] = {
    ProductSort.NEWEST: (
        "created_at DESC, id DESC",
        "(created_at, id) < (%(k)s, %(kid)s)",
        "created_at",
    ),
    ProductSort.PRICE_ASC: (
        "price_amount, id",
        "(price_amount, id) > (%(k)s, %(kid)s)",
        "price_amount",
    ),
    ProductSort.PRICE_DESC: (
        "price_amount DESC, id DESC",
        "(price_amount, id) < (%(k)s, %(kid)s)",
        "price_amount",
    ),
    ProductSort.NAME: ("name, id", "(name, id) > (%(k)s, %(kid)s)", "name"),
}


def product_from_row(row: tuple[Any, ...]) -> Product:
    """A product from a row of ``COLUMNS``, in that order (plain tuples: the hot list path)."""
    (pid, tenant_id, seller_id, sku, name, description, category, amount, currency, stock,
     status, version, created_at, updated_at) = row  # fmt: skip
    return Product(
        id=pid,
        tenant_id=tenant_id,
        seller_id=seller_id,
        sku=sku,
        name=name,
        description=description,
        category=category,
        price=Money(amount, currency),
        stock=stock,
        status=ProductStatus(status),
        version=version,
        created_at=created_at,
        updated_at=updated_at,
    )


def product_params(p: Product) -> dict[str, Any]:
    """A product as the named parameters of the product statements."""
    return {
        "id": p.id,
        "tenant_id": p.tenant_id,
        "seller_id": p.seller_id,
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "price_amount": p.price.amount,
        "currency": p.price.currency,
        "stock": p.stock,
        "status": p.status.value,
        "version": p.version,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def build_search(tenant_id: UUID, q: ProductQuery) -> tuple[str, dict[str, Any]]:
    """The list query as SQL text and parameters (also used by the benchmark's ceiling)."""
    clauses = ["status = 'active'"]
    params: dict[str, Any] = {"t": tenant_id, "limit": q.limit + 1}
    if q.text:
        clauses.append("search @@ websearch_to_tsquery('english', %(q)s)")
        params["q"] = q.text
    if q.category is not None:
        clauses.append("category = %(category)s")
        params["category"] = q.category
    if q.currency is not None:
        clauses.append("currency = %(currency)s")
        params["currency"] = q.currency
    if q.min_price is not None:
        clauses.append("price_amount >= %(min_price)s")
        params["min_price"] = q.min_price
    if q.max_price is not None:
        clauses.append("price_amount <= %(max_price)s")
        params["max_price"] = q.max_price
    if q.in_stock is True:
        clauses.append("stock > 0")
    elif q.in_stock is False:
        clauses.append("stock = 0")
    if q.seller_id is not None:
        clauses.append("seller_id = %(seller_id)s")
        params["seller_id"] = q.seller_id
    order, keyset, _ = _SORTS[q.sort]
    if q.after is not None:
        clauses.append(keyset)
        params["k"], params["kid"] = q.after
    where = " AND ".join(clauses)
    sql = (
        f"SELECT {COLUMNS} FROM products WHERE tenant_id = %(t)s AND {where}"
        f" ORDER BY {order} LIMIT %(limit)s"
    )
    return sql, params


def sort_key(product: Product, sort: ProductSort) -> object:
    column = _SORTS[sort][2]
    if column == "price_amount":
        return product.price.amount
    value: object = getattr(product, column)
    return value


_PLACEHOLDERS = ", ".join(f"%({c.strip()})s" for c in COLUMNS.split(","))
_INSERT = f"INSERT INTO products ({COLUMNS}) VALUES ({_PLACEHOLDERS})"
_UPDATE = (
    "UPDATE products SET sku = %(sku)s, name = %(name)s, description = %(description)s,"
    " category = %(category)s, price_amount = %(price_amount)s, currency = %(currency)s,"
    " stock = %(stock)s, status = %(status)s, version = %(version)s, updated_at = %(updated_at)s"
    " WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND version = %(expected)s"
)


class SqlProductStore:
    def __init__(self, conn: Connection, tenant_id: UUID) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    async def add(self, product: Product) -> None:
        try:
            async with self._conn.transaction():  # a savepoint: the caller's work survives
                await self._conn.execute(_INSERT, product_params(product))
        except UniqueViolation as exc:
            if exc.diag.constraint_name == "products_tenant_sku":
                raise SkuTaken() from None
            raise

    async def get(self, product_id: UUID) -> Product | None:
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(
            f"SELECT {COLUMNS} FROM products WHERE tenant_id = %s AND id = %s",
            (self._tenant_id, product_id),
        )
        row = await cur.fetchone()
        return product_from_row(row) if row else None

    async def update(self, product: Product, expected_version: int) -> bool:
        params = product_params(product)
        params["expected"] = expected_version
        try:
            async with self._conn.transaction():
                cur = await self._conn.execute(_UPDATE, params)
                return cur.rowcount == 1
        except UniqueViolation as exc:
            if exc.diag.constraint_name == "products_tenant_sku":
                raise SkuTaken() from None
            raise

    async def search(self, query: ProductQuery) -> ProductPage:
        sql, params = build_search(self._tenant_id, query)
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(sql, params)
        rows = await cur.fetchall()
        items = [product_from_row(r) for r in rows[: query.limit]]
        next_position = None
        if len(rows) > query.limit and items:
            last = items[-1]
            next_position = (sort_key(last, query.sort), last.id)
        return ProductPage(items, next_position)


class SqlCatalogUnitOfWork(SqlUnitOfWork):
    products: SqlProductStore
    erp: JobErpOutbox

    def __init__(
        self, database: Database, tenant_id: UUID | None, scheduling: JobScheduling
    ) -> None:
        super().__init__(database, tenant_id)
        self._scheduling = scheduling

    def _bind(self, conn: Connection) -> None:
        assert self.tenant_id is not None
        self.products = SqlProductStore(conn, self.tenant_id)
        self.erp = JobErpOutbox(self._scheduling.in_transaction(conn, self.tenant_id))
