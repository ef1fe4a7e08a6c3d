from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from impextech.catalog.domain.model import Product, ProductSort
from impextech.kernel.domain.principal import Role
from impextech.kernel.domain.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class ProductQuery:
    text: str | None = None
    category: str | None = None
    currency: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    seller_id: UUID | None = None
    sort: ProductSort = ProductSort.NEWEST
    after: tuple[object, UUID] | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: Sequence[Product]
    next_position: tuple[object, UUID] | None


class ProductStore(Protocol):
    async def add(self, product: Product) -> None: ...
    async def get(self, product_id: UUID) -> Product | None: ...
    async def update(self, product: Product, expected_version: int) -> bool:
        """Write ``product`` if the stored version is still ``expected_version``."""
        ...

    async def search(self, query: ProductQuery) -> ProductPage: ...


class ErpOutbox(Protocol):
    """Records, in the unit of work's transaction, that a product must reach the ERP."""

    async def product_changed(self, product_id: UUID) -> None: ...


class CatalogUnitOfWork(UnitOfWork, Protocol):
    @property
    def products(self) -> ProductStore: ...
    @property
    def erp(self) -> ErpOutbox: ...


class CatalogUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> CatalogUnitOfWork: ...


class Accounts(Protocol):
    """Who a user is now, asked of the context that owns accounts (the catalog keeps none)."""

    async def active_role(self, tenant_id: UUID, user_id: UUID) -> Role | None:
        """The user's current role while their account is active in the tenant; else None."""
        ...
