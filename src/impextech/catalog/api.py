"""The catalog context's public facade: its use cases and the values they take.

Assembled processes ``require(CATALOG)`` for the product use cases (the demo seeds through it).
"""

from impextech.catalog.context import CATALOG
from impextech.catalog.domain.errors import SkuTaken
from impextech.catalog.domain.model import Product, ProductSort, ProductStatus
from impextech.catalog.service.ports import ProductQuery
from impextech.catalog.service.products import CatalogService, NewProduct, ProductChanges

__all__ = [
    "CATALOG",
    "CatalogService",
    "NewProduct",
    "Product",
    "ProductChanges",
    "ProductQuery",
    "ProductSort",
    "ProductStatus",
    "SkuTaken",
]
