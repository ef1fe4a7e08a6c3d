"""The catalog context's public facade."""

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_job import erp_push_handler, make_erp_gateway
from impextech.catalog.adapters.erp_outbox import (
    ERP_PUSH,
    ERP_RECONCILE,
    ERP_RECONCILE_CRON,
    erp_reconcile_handler,
)
from impextech.catalog.adapters.imports_http import ImportsWeb
from impextech.catalog.adapters.imports_http import router as imports_router
from impextech.catalog.adapters.imports_job import PRODUCT_IMPORT, import_handler, product_imports
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
    "ERP_PUSH",
    "ERP_RECONCILE",
    "ERP_RECONCILE_CRON",
    "PRODUCT_IMPORT",
    "CatalogService",
    "ErpGateway",
    "ErpRejected",
    "ErpSync",
    "ErpTransientError",
    "ErpUnavailable",
    "HttpErpGateway",
    "ImportsWeb",
    "NewProduct",
    "ProductQuery",
    "PushOutcome",
    "PushResult",
    "erp_push_handler",
    "erp_reconcile_handler",
    "import_handler",
    "imports_router",
    "make_erp_gateway",
    "product_imports",
]
