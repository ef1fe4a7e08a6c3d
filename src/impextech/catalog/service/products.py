"""Product use cases: public browsing; sellers manage their own, admins any in their tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from uuid import UUID

from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.ports import CatalogUnitOfWorkFactory, ProductPage, ProductQuery
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import Forbidden, NotFound, PreconditionFailed
from impextech.kernel.domain.money import Money
from impextech.kernel.domain.principal import Principal, Role


class ProductNotFound(NotFound):
    code = "product-not-found"
    title = "No such product"


@dataclass(frozen=True, slots=True)
class NewProduct:
    sku: str
    name: str
    description: str
    category: str
    price: Money
    stock: int


@dataclass(frozen=True, slots=True)
class ProductChanges:
    sku: str | None = None
    name: str | None = None
    description: str | None = None
    category: str | None = None
    price: Money | None = None
    stock: int | None = None


def _can_manage(principal: Principal, product: Product) -> bool:
    return principal.is_admin or product.seller_id == principal.user_id


class CatalogService:
    def __init__(self, uow: CatalogUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def search(self, tenant_id: UUID, query: ProductQuery) -> ProductPage:
        async with self._uow(tenant_id) as uow:
            return await uow.products.search(query)

    async def get(self, tenant_id: UUID, product_id: UUID, viewer: Principal | None) -> Product:
        async with self._uow(tenant_id) as uow:
            product = await uow.products.get(product_id)
        if product is None:
            raise ProductNotFound()
        if product.status is ProductStatus.ARCHIVED and (
            viewer is None or not _can_manage(viewer, product)
        ):
            raise ProductNotFound()
        return product

    async def create(self, principal: Principal, new: NewProduct) -> Product:
        if principal.role not in (Role.SELLER, Role.ADMIN):
            raise Forbidden("only sellers and admins list products")
        now = self._clock.now()
        product = Product(
            id=uuid.uuid4(),
            tenant_id=principal.tenant_id,
            seller_id=principal.user_id,
            sku=new.sku,
            name=new.name,
            description=new.description,
            category=new.category,
            price=new.price,
            stock=new.stock,
            status=ProductStatus.ACTIVE,
            version=1,
            created_at=now,
            updated_at=now,
        )
        async with self._uow(principal.tenant_id) as uow:
            await uow.products.add(product)
            await uow.erp.product_changed(product.id)
            await uow.commit()
        return product

    async def _change(
        self, principal: Principal, product_id: UUID, expected_version: int, **fields: object
    ) -> Product:
        async with self._uow(principal.tenant_id) as uow:
            current = await uow.products.get(product_id)
            if current is None:
                raise ProductNotFound()
            if not _can_manage(principal, current):
                if current.status is ProductStatus.ARCHIVED:
                    raise ProductNotFound()
                raise Forbidden("you can only change your own products")
            if current.version != expected_version:
                raise PreconditionFailed(
                    f"the product is at version {current.version}, not {expected_version}"
                )
            updated = current.changed(self._clock.now(), version=current.version + 1, **fields)
            if not await uow.products.update(updated, expected_version):
                raise PreconditionFailed("the product changed while you were saving it")
            await uow.erp.product_changed(updated.id)
            await uow.commit()
        return updated

    async def update(
        self, principal: Principal, product_id: UUID, expected_version: int, changes: ProductChanges
    ) -> Product:
        changed = {
            f.name: getattr(changes, f.name)
            for f in fields(changes)
            if getattr(changes, f.name) is not None
        }
        return await self._change(principal, product_id, expected_version, **changed)

    async def archive(
        self, principal: Principal, product_id: UUID, expected_version: int
    ) -> Product:
        return await self._change(
            principal, product_id, expected_version, status=ProductStatus.ARCHIVED
        )
