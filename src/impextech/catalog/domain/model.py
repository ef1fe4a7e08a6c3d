"""Products: what a seller lists, priced in integer minor units, with optimistic versions."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from impextech.kernel.domain.errors import FieldIssue, InvalidInput
from impextech.kernel.domain.money import Money

SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_STOCK = 1_000_000_000
MAX_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_CATEGORY = 80


class ProductStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class ProductSort(enum.StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    NAME = "name"


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [FieldIssue(("body", field), message)])


def validate_sku(sku: str) -> str:
    if not SKU_PATTERN.fullmatch(sku):
        raise _invalid("sku", "1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
    return sku


def validate_stock(stock: int) -> int:
    if type(stock) is not int or not 0 <= stock <= MAX_STOCK:
        raise _invalid("stock", f"an integer between 0 and {MAX_STOCK}")
    return stock


def validate_name(name: str) -> str:
    if not name or len(name) > MAX_NAME:
        raise _invalid("name", f"1-{MAX_NAME} characters")
    return name


def validate_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise _invalid("description", f"at most {MAX_DESCRIPTION} characters")
    return description


def validate_category(category: str) -> str:
    if not category or len(category) > MAX_CATEGORY:
        raise _invalid("category", f"1-{MAX_CATEGORY} characters")
    return category


@dataclass(frozen=True, slots=True)
class Product:
    id: UUID
    tenant_id: UUID
    seller_id: UUID
    sku: str
    name: str
    description: str
    category: str
    price: Money
    stock: int
    status: ProductStatus
    version: int
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        validate_sku(self.sku)
        validate_stock(self.stock)
        validate_name(self.name)
        validate_description(self.description)
        validate_category(self.category)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def changed(self, now: datetime, **fields: object) -> Product:
        """A copy with ``fields`` changed; validation runs again on the copy."""
        return replace(self, updated_at=now, **fields)  # type: ignore[arg-type]
