"""Product changes become ERP pushes: a job enqueued in the same transaction as the change.

One pending push per product (a burst of edits joins the waiting job) and one running push per
product (the per-key lock keeps pushes in order); the job reads the product when it runs, so it
always sends the newest version.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from impextech.jobs.api import (
    Backoff,
    Handler,
    JobContext,
    JobKind,
    JobRequest,
    JobScheduler,
    JobScheduling,
    JsonObject,
)
from impextech.kernel.db import Database

ERP_PUSH = JobKind(
    "catalog.erp_push",
    queue="urgent",
    priority=10,
    max_attempts=8,
    timeout_seconds=30,
    backoff=Backoff(base_seconds=2, cap_seconds=300),
)


class JobErpOutbox:
    def __init__(self, scheduler: JobScheduler) -> None:
        self._scheduler = scheduler

    async def product_changed(self, product_id: UUID) -> None:
        await self.products_changed([product_id])

    async def products_changed(self, product_ids: Sequence[UUID]) -> None:
        """One push per product, queued in a few statements however many there are."""
        await self._scheduler.enqueue_many(
            ERP_PUSH,
            [
                JobRequest(
                    {"product_id": str(pid)},
                    dedup_key=f"product:{pid}",
                    lock_key=f"erp:product:{pid}",
                )
                for pid in product_ids
            ],
        )


# The safety net under the outbox: anything the ERP has not acknowledged (a push that went dead
# while the ERP was down for days, a restore from backup) is queued again on a schedule.
ERP_RECONCILE = JobKind(
    "catalog.erp_reconcile", queue="default", max_attempts=3, timeout_seconds=120
)
ERP_RECONCILE_CRON = "*/10 * * * *"


def erp_reconcile_handler(
    database: Database, scheduling: JobScheduling, *, erp_configured: bool, batch: int = 1000
) -> Handler:
    async def reconcile(ctx: JobContext) -> JsonObject:
        if not erp_configured:
            return {"queued": 0, "erp": "none configured"}
        async with database.transaction(ctx.tenant_id) as conn:
            cur = await conn.execute(
                "SELECT id FROM products WHERE tenant_id = %s"
                " AND (erp_synced_version IS NULL OR erp_synced_version < version)"
                " ORDER BY updated_at, id LIMIT %s",
                (ctx.tenant_id, batch),
            )
            behind = [row.id for row in await cur.fetchall()]
            outbox = JobErpOutbox(scheduling.in_transaction(conn, ctx.tenant_id))
            await outbox.products_changed(behind)
        return {"queued": len(behind)}

    return reconcile
