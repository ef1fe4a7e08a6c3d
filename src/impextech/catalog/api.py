"""The catalog context's public facade."""

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_job import erp_push_handler, make_erp_gateway
from impextech.catalog.service.erp_sync import (
    ErpGateway,
    ErpRejected,
    ErpSync,
    ErpTransientError,
    ErpUnavailable,
    PushOutcome,
    PushResult,
)
from impextech.catalog.service.ports import ProductQuery
from impextech.catalog.service.products import CatalogService, NewProduct

__all__ = [
    "CatalogService",
    "ErpGateway",
    "ErpRejected",
    "ErpSync",
    "ErpTransientError",
    "ErpUnavailable",
    "HttpErpGateway",
    "NewProduct",
    "ProductQuery",
    "PushOutcome",
    "PushResult",
    "erp_push_handler",
    "make_erp_gateway",
]
