"""What the catalog context brings: the product routes and the CSV import, and its jobs (ERP
pushes, the ERP reconcile, the bulk import) with the ERP gateway and its breaker in workers."""

from __future__ import annotations

from uuid import UUID

from impextech.catalog.adapters.erp_job import erp_push_handler, make_erp_gateway
from impextech.catalog.adapters.erp_outbox import (
    ERP_PUSH,
    ERP_RECONCILE,
    ERP_RECONCILE_CRON,
    erp_reconcile_handler,
)
from impextech.catalog.adapters.http import CatalogWeb
from impextech.catalog.adapters.http import router as products_router
from impextech.catalog.adapters.imports_http import IMPORTS_PATH, ImportsWeb
from impextech.catalog.adapters.imports_http import router as imports_router
from impextech.catalog.adapters.imports_job import PRODUCT_IMPORT, import_handler, product_imports
from impextech.catalog.adapters.sql import SqlCatalogUnitOfWork
from impextech.catalog.service.products import CatalogService
from impextech.catalog.settings import CatalogSettings
from impextech.identity.api import IDENTITY
from impextech.jobs.api import JOB_REGISTRY, JOB_SCHEDULING
from impextech.kernel.contexts import Assembly, Context, Key, Process
from impextech.resilience.api import BreakerGauges

CATALOG: Key[CatalogService] = Key("catalog")


def install(assembly: Assembly) -> None:
    settings = assembly.settings.section(CatalogSettings)
    database, clock = assembly.database, assembly.clock
    scheduling = assembly.require(JOB_SCHEDULING)
    jobs = assembly.require(JOB_REGISTRY)
    # An import job asks identity whether its importer may still write when it runs.
    imports = product_imports(database, scheduling, clock, accounts=assembly.require(IDENTITY))

    def catalog_uow(tenant_id: UUID) -> SqlCatalogUnitOfWork:
        return SqlCatalogUnitOfWork(database, tenant_id, scheduling)

    catalog = CatalogService(catalog_uow, clock)
    assembly.provide(CATALOG, catalog)

    if assembly.process is Process.WORKER:
        # One gateway per worker process: every ERP job in it shares one breaker.
        gateway = make_erp_gateway(
            settings.erp_url,
            timeout=settings.erp_timeout,
            breaker_failures=settings.erp_breaker_failures,
            breaker_cool_down=settings.erp_breaker_cool_down,
            clock=clock,
        )
        if gateway is not None:
            assembly.add_collector(BreakerGauges(gateway.breaker))
            assembly.on_close(gateway.aclose)
        jobs.declare(ERP_PUSH, erp_push_handler(database, gateway))
        jobs.declare(
            ERP_RECONCILE,
            erp_reconcile_handler(database, scheduling, erp_configured=gateway is not None),
        )
        jobs.declare(PRODUCT_IMPORT, import_handler(imports))
    else:
        for kind in (ERP_PUSH, ERP_RECONCILE, PRODUCT_IMPORT):
            jobs.declare(kind)
    jobs.every(ERP_RECONCILE, ERP_RECONCILE_CRON)

    if assembly.process is Process.WEB:
        # The import route first: its path would otherwise match /products/{product_id}.
        assembly.add_router(imports_router, state=("catalog_imports", ImportsWeb(imports)))
        assembly.add_router(
            products_router,
            state=("catalog", CatalogWeb(catalog, assembly.cursors)),
        )
        assembly.accept_raw_body(IMPORTS_PATH)  # a CSV body; the route checks type and size


CONTEXT = Context("catalog", install=install, settings=CatalogSettings)
