"""Fakes of the catalog's ports: products, the ERP outbox, imports, ERP sync, the ERP, accounts.

``FakeCatalog`` is one marketplace platform's catalog in memory: every unit of work it hands out
runs over its one ``MemoryDatabase``, scoped to one tenant like the SQL units of work.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product, ProductSort, ProductStatus
from impextech.catalog.service.erp_sync import ErpRejected, ErpTransientError, ErpUnavailable
from impextech.catalog.service.ports import ProductPage, ProductQuery
from impextech.kernel.domain.principal import Role
from tests.fakes.memory import MemoryDatabase, MemoryTransaction, MemoryUnitOfWork

PRODUCTS = "products"
SKUS = "product_skus"  # lock names only: one per (tenant, sku), as the unique index serialises
SYNCED = "erp_synced_versions"
ANNOUNCED = "erp_announced"
IMPORT_JOBS = "import_jobs"


def _tokens(text: str) -> set[str]:
    # The English stemmer the SQL search uses does far more; the fake knows case and plurals only.
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in re.findall(r"[a-z0-9]+", text.lower())}  # fmt: skip


def _matches(product: Product, text: str) -> bool:
    words = _tokens(f"{product.name} {product.category} {product.description}")
    return _tokens(text) <= words


_KEYS: dict[ProductSort, tuple[Callable[[Product], tuple[Any, UUID]], bool]] = {
    ProductSort.NEWEST: (lambda p: (p.created_at, p.id), True),
    ProductSort.PRICE_ASC: (lambda p: (p.price.amount, p.id), False),
    ProductSort.PRICE_DESC: (lambda p: (p.price.amount, p.id), True),
    ProductSort.NAME: (lambda p: (p.name, p.id), False),
}


def _cursor_value(product: Product, sort: ProductSort) -> object:
    if sort is ProductSort.NEWEST:
        return product.created_at
    if sort is ProductSort.NAME:
        return product.name
    return product.price.amount


def _wanted(p: Product, q: ProductQuery) -> bool:
    return (
        p.status is ProductStatus.ACTIVE
        and (not q.text or _matches(p, q.text))
        and (q.category is None or p.category == q.category)
        and (q.currency is None or p.price.currency == q.currency)
        and (q.min_price is None or p.price.amount >= q.min_price)
        and (q.max_price is None or p.price.amount <= q.max_price)
        and (q.in_stock is None or (p.stock > 0) is q.in_stock)
        and (q.seller_id is None or p.seller_id == q.seller_id)
    )


class _Products:
    """What the product stores share: a tenant's rows, and a SKU's uniqueness in the tenant."""

    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    def _mine(self, product_id: UUID) -> Product | None:
        product: Product | None = self._tx.get(PRODUCTS, product_id)
        return product if product is not None and product.tenant_id == self._tenant else None

    def _all(self) -> list[Product]:
        return [p for p in self._tx.rows(PRODUCTS) if p.tenant_id == self._tenant]

    async def _claim_sku(self, sku: str, product_id: UUID, message: str | None = None) -> None:
        """Wait for any writer of the same SKU, then refuse it if another product holds it."""
        await self._tx.lock(SKUS, (self._tenant, sku))
        if any(p.sku == sku and p.id != product_id for p in self._all()):
            raise SkuTaken(message)

    async def _insert(self, product: Product, message: str | None = None) -> None:
        if product.tenant_id != self._tenant:
            raise PermissionError("row-level security refuses another tenant's row")
        await self._claim_sku(product.sku, product.id, message)
        await self._tx.lock(PRODUCTS, product.id)
        if self._tx.get(PRODUCTS, product.id) is not None:
            raise ValueError(f"product id {product.id} exists already")
        await self._tx.put(PRODUCTS, product.id, product)


class FakeProductStore(_Products):
    async def add(self, product: Product) -> None:
        await self._insert(product)

    async def get(self, product_id: UUID) -> Product | None:
        return self._mine(product_id)

    async def update(self, product: Product, expected_version: int) -> bool:
        await self._tx.lock(PRODUCTS, product.id)
        current = self._mine(product.id)
        if current is None or current.version != expected_version:
            return False
        if product.sku != current.sku:
            await self._tx.lock(SKUS, (self._tenant, current.sku))
            await self._claim_sku(product.sku, product.id)
        # The SQL statement sets these columns only; owner, tenant and creation stay as stored.
        stored = replace(
            current,
            sku=product.sku,
            name=product.name,
            description=product.description,
            category=product.category,
            price=product.price,
            stock=product.stock,
            status=product.status,
            version=product.version,
            updated_at=product.updated_at,
        )
        await self._tx.put(PRODUCTS, product.id, stored)
        return True

    async def search(self, query: ProductQuery) -> ProductPage:
        key, descending = _KEYS[query.sort]
        found = [p for p in self._all() if _wanted(p, query)]
        if query.after is not None:
            after = cast(tuple[Any, UUID], query.after)
            found = [p for p in found if (key(p) < after if descending else key(p) > after)]
        found.sort(key=key, reverse=descending)
        items = found[: query.limit]
        more = len(found) > query.limit and items
        last = items[-1] if more else None
        return ProductPage(
            items, (_cursor_value(last, query.sort), last.id) if last is not None else None
        )


class FakeErpOutbox:
    """Both outbox ports: announcements are logged per tenant when the transaction commits."""

    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    async def product_changed(self, product_id: UUID) -> None:
        self._tx.append(ANNOUNCED, (self._tenant, product_id))

    async def products_changed(self, product_ids: Sequence[UUID]) -> None:
        for product_id in product_ids:
            self._tx.append(ANNOUNCED, (self._tenant, product_id))


class _FakeUnitOfWork(MemoryUnitOfWork):
    def __init__(self, catalog: FakeCatalog, tenant_id: UUID) -> None:
        super().__init__(catalog.db, tenant_id)
        self._catalog = catalog


class FakeCatalogUnitOfWork(_FakeUnitOfWork):
    products: FakeProductStore
    erp: FakeErpOutbox

    def _bind(self, tx: MemoryTransaction) -> None:
        self.products = FakeProductStore(tx, self.tenant_id)
        self.erp = FakeErpOutbox(tx, self.tenant_id)


# -- imports ------------------------------------------------------------------------------------


class FakeImportProductStore(_Products):
    def __init__(self, tx: MemoryTransaction, tenant_id: UUID, catalog: FakeCatalog) -> None:
        super().__init__(tx, tenant_id)
        self._catalog = catalog

    async def lock_by_sku(self, skus: Sequence[str]) -> dict[str, Product]:
        wanted = set(skus)
        found = sorted((p for p in self._all() if p.sku in wanted), key=lambda p: p.id)
        for product in found:
            await self._tx.lock(PRODUCTS, product.id)
        # Read again under the locks: a writer we waited for may have changed them.
        fresh = [self._mine(p.id) for p in found]
        return {p.sku: p for p in fresh if p is not None and p.sku in wanted}

    async def insert(self, products: Sequence[Product]) -> None:
        for product in sorted(products, key=lambda p: p.sku):
            if product.sku == self._catalog.fail_on_insert_of:
                raise ConnectionError("lost the connection (told to by the test)")
            await self._insert(
                product, "a SKU in this batch was listed meanwhile; the next attempt sees it"
            )

    async def update(self, products: Sequence[Product]) -> None:
        for product in products:
            current = self._mine(product.id)
            if current is None:
                continue  # the SQL statement matches no row and says nothing
            stored = replace(
                current,
                name=product.name,
                description=product.description,
                category=product.category,
                price=product.price,
                stock=product.stock,
                version=product.version,
                updated_at=product.updated_at,
            )
            await self._tx.put(PRODUCTS, product.id, stored)


class FakeImportUnitOfWork(_FakeUnitOfWork):
    products: FakeImportProductStore
    changes: FakeErpOutbox

    def _bind(self, tx: MemoryTransaction) -> None:
        self.products = FakeImportProductStore(tx, self.tenant_id, self._catalog)
        self.changes = FakeErpOutbox(tx, self.tenant_id)


@dataclass(frozen=True, slots=True)
class QueuedImport:
    tenant_id: UUID
    job_id: UUID
    payload: dict[str, str]
    created_by: UUID


class FakeImportJobs:
    def __init__(self, tx: MemoryTransaction, tenant_id: UUID) -> None:
        self._tx = tx
        self._tenant = tenant_id

    async def enqueue_import(self, payload: dict[str, str], created_by: UUID) -> UUID:
        job_id = uuid.uuid4()
        self._tx.append(IMPORT_JOBS, QueuedImport(self._tenant, job_id, dict(payload), created_by))
        return job_id


class FakeSubmitUnitOfWork(_FakeUnitOfWork):
    jobs: FakeImportJobs

    def _bind(self, tx: MemoryTransaction) -> None:
        self.jobs = FakeImportJobs(tx, self.tenant_id)


# -- ERP sync -----------------------------------------------------------------------------------


class FakeErpSyncStore(_Products):
    async def get_with_synced_version(self, product_id: UUID) -> tuple[Product, int | None] | None:
        product = self._mine(product_id)
        if product is None:
            return None
        synced: int | None = self._tx.get(SYNCED, product_id)
        return product, synced

    async def record_synced(self, product_id: UUID, version: int) -> None:
        await self._tx.lock(PRODUCTS, product_id)
        if self._mine(product_id) is None:
            return
        before: int | None = self._tx.get(SYNCED, product_id)
        await self._tx.put(SYNCED, product_id, max(before or 0, version))


class FakeErpSyncUnitOfWork(_FakeUnitOfWork):
    erp_sync: FakeErpSyncStore

    def _bind(self, tx: MemoryTransaction) -> None:
        self.erp_sync = FakeErpSyncStore(tx, self.tenant_id)


# -- the catalog as a whole ---------------------------------------------------------------------


class FakeCatalog:
    """Every catalog unit of work over one in-memory database, and what tests look at."""

    def __init__(self, db: MemoryDatabase | None = None) -> None:
        self.db = db or MemoryDatabase()
        self.fail_on_insert_of: str | None = None

    def uow(self, tenant_id: UUID) -> FakeCatalogUnitOfWork:
        return FakeCatalogUnitOfWork(self, tenant_id)

    def import_uow(self, tenant_id: UUID) -> FakeImportUnitOfWork:
        return FakeImportUnitOfWork(self, tenant_id)

    def submit_uow(self, tenant_id: UUID) -> FakeSubmitUnitOfWork:
        return FakeSubmitUnitOfWork(self, tenant_id)

    def erp_sync_uow(self, tenant_id: UUID) -> FakeErpSyncUnitOfWork:
        return FakeErpSyncUnitOfWork(self, tenant_id)

    # What a test reads: committed state only.

    def products(self, tenant_id: UUID) -> dict[str, Product]:
        """The tenant's committed products by SKU."""
        return {p.sku: p for p in self.db.committed(PRODUCTS).values() if p.tenant_id == tenant_id}

    def product(self, product_id: UUID) -> Product | None:
        found: Product | None = self.db.committed(PRODUCTS).get(product_id)
        return found

    def announced(self, tenant_id: UUID) -> list[UUID]:
        """Every committed announcement to the ERP outbox for the tenant, in order."""
        return [pid for tenant, pid in self.db.log(ANNOUNCED) if tenant == tenant_id]

    def queued_imports(self) -> list[QueuedImport]:
        return self.db.log(IMPORT_JOBS)

    def synced_version(self, product_id: UUID) -> int | None:
        version: int | None = self.db.committed(SYNCED).get(product_id)
        return version

    @property
    def commits(self) -> int:
        return self.db.commits

    def seed(self, *products: Product) -> None:
        """Products committed before the test starts (no lock, no check: a fixture's shortcut)."""
        for product in products:
            self.db.seed(PRODUCTS, product.id, product)


# -- outside the catalog ------------------------------------------------------------------------


class FakeAccounts:
    """Every account is an active seller unless a test says otherwise; it records each question.

    Given ``homes`` (each account's tenant), it knows those accounts only, each in its own
    tenant, and answers None for any other question, as identity does.
    """

    def __init__(
        self, roles: dict[UUID, Role | None] | None = None, homes: dict[UUID, UUID] | None = None
    ) -> None:
        self.roles = roles or {}
        self.homes = homes
        self.asked: list[tuple[UUID, UUID]] = []

    async def active_role(self, tenant_id: UUID, user_id: UUID) -> Role | None:
        self.asked.append((tenant_id, user_id))
        if self.homes is not None and self.homes.get(user_id) != tenant_id:
            return None
        return self.roles.get(user_id, Role.SELLER)


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _document(product: Product) -> tuple[object, ...]:
    """What the ERP receives of a product (its creation time and tenant id are not sent)."""
    return (
        product.id, product.seller_id, product.sku, product.name, product.description,
        product.category, product.price, product.stock, product.status, product.version,
        product.updated_at,
    )  # fmt: skip


class FakeErpGateway:
    """A tenant's ERP that keeps product records the way the sandbox ERP does.

    It remembers each idempotency key's request, replays a repeat, refuses a key reused for
    another document, and keeps a newer version over an older one sent later. ``pushes`` lists
    every push it answered, replays included. ``failure`` makes the next pushes fail before
    anything is applied; ``unavailable_until`` plays an open breaker (nothing is sent).
    """

    def __init__(self) -> None:
        self.records: dict[tuple[UUID, UUID], Product] = {}
        self.pushes: list[tuple[Product, str]] = []
        self.failure: ErpTransientError | ErpRejected | None = None
        self.unavailable_until: datetime | None = None
        self._keys: dict[str, tuple[UUID, tuple[object, ...]]] = {}

    async def push_product(self, product: Product, idempotency_key: str) -> None:
        if self.unavailable_until is not None:
            raise ErpUnavailable(self.unavailable_until)
        if self.failure is not None:
            raise self.failure
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise ErpRejected("the ERP refused the push with 400: bad idempotency key")
        request = (product.tenant_id, _document(product))
        seen = self._keys.get(idempotency_key)
        if seen is not None and seen != request:
            raise ErpRejected("the ERP refused the push with 422: idempotency key reused")
        self.pushes.append((product, idempotency_key))
        if seen is not None:
            return  # a replay: the ERP answers as it did the first time and changes nothing
        self._keys[idempotency_key] = request
        where = (product.tenant_id, product.id)
        stored = self.records.get(where)
        if stored is None or stored.version <= product.version:
            self.records[where] = product
