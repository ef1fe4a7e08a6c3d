"""The catalog context's public facade."""

from impextech.catalog.service.ports import ProductQuery
from impextech.catalog.service.products import CatalogService, NewProduct

__all__ = ["CatalogService", "NewProduct", "ProductQuery"]
