"""Where a page of the product list ends, as the cursor carries it: the sort key and the id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from impextech.catalog.domain.model import ProductSort
from impextech.kernel.pagination import KeyPosition, key_position_from_json

# The type of the key each sort pages by (its column in the keyset comparison).
_KEY_TYPES: dict[ProductSort, type] = {
    ProductSort.NEWEST: datetime,
    ProductSort.PRICE_ASC: int,
    ProductSort.PRICE_DESC: int,
    ProductSort.NAME: str,
}


def position_parser(sort: ProductSort) -> Callable[[list[object]], KeyPosition]:
    """Reads a position of the list in ``sort`` order back; ValueError if it is not one."""
    key_type = _KEY_TYPES[sort]
    return lambda raw: key_position_from_json(raw, key_type)
