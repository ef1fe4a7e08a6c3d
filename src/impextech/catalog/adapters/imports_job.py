"""The bulk import as a job: its kind, its wiring over SQL and the job queue, and its handler."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from impextech.catalog.adapters.erp_outbox import JobErpOutbox
from impextech.catalog.adapters.sql_imports import SqlImportUnitOfWork, SqlSubmitUnitOfWork
from impextech.catalog.domain.imports import (
    ImporterNotAllowed,
    ImportFileInvalid,
    ImportFileMalformed,
    ImportTooLarge,
)
from impextech.catalog.service.imports import (
    BATCH_SIZE,
    ChangedProducts,
    ImportOrder,
    ProductImports,
)
from impextech.catalog.service.ports import Accounts
from impextech.jobs.api import (
    Backoff,
    Handler,
    JobContext,
    JobKind,
    JobScheduling,
    JsonObject,
    PermanentJobError,
)
from impextech.kernel.db import Connection, Database
from impextech.kernel.domain.clock import Clock

# The bulk queue: an import can fill every bulk slot and urgent work still has its own.
PRODUCT_IMPORT = JobKind(
    "catalog.product_import",
    queue="bulk",
    max_attempts=3,
    timeout_seconds=600,
    backoff=Backoff(base_seconds=5, cap_seconds=120),
)


def product_imports(
    database: Database,
    scheduling: JobScheduling,
    clock: Clock,
    batch_size: int = BATCH_SIZE,
    *,
    accounts: Accounts,
) -> ProductImports:
    """``accounts`` answers whether an importer may still write (identity's facade)."""

    def erp_outbox(conn: Connection, tenant_id: UUID) -> ChangedProducts:
        # The one place an import's writes reach the ERP: a push job per created or updated
        # product, queued in the batch's own transaction.
        return JobErpOutbox(scheduling.in_transaction(conn, tenant_id))

    return ProductImports(
        lambda tenant_id: SqlSubmitUnitOfWork(
            database, tenant_id, scheduling.in_transaction, PRODUCT_IMPORT
        ),
        lambda tenant_id: SqlImportUnitOfWork(database, tenant_id, erp_outbox),
        clock,
        accounts,
        batch_size,
    )


def import_handler(imports: ProductImports) -> Handler:
    async def run_import(ctx: JobContext) -> JsonObject:
        payload = ctx.payload
        try:
            order = ImportOrder.from_payload(
                dict(payload) if isinstance(payload, Mapping) else None
            )
        except ValueError as exc:
            raise PermanentJobError(f"not an import job's payload: {exc}") from None
        try:
            report = await imports.run(ctx.tenant_id, order, ctx.progress)
        except (ImportFileMalformed, ImportFileInvalid, ImportTooLarge) as exc:
            # Checked when it was submitted; a file that fails now will fail every time.
            raise PermanentJobError(exc.detail) from None
        except ImporterNotAllowed as exc:
            # Retrying (or an admin's retry) runs as the same importer: refused every time.
            raise PermanentJobError(exc.detail) from None
        return report.to_json()

    return run_import
