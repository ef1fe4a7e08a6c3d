"""Product changes become ERP pushes: a job enqueued in the same transaction as the change.

One pending push per product (a burst of edits joins the waiting job) and one running push per
product (the per-key lock keeps pushes in order); the job reads the product when it runs, so it
always sends the newest version.
"""

from __future__ import annotations

from uuid import UUID

from impextech.jobs.api import Backoff, JobKind, JobScheduler

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
        key = f"product:{product_id}"
        await self._scheduler.enqueue(
            ERP_PUSH, {"product_id": str(product_id)}, dedup_key=key, lock_key=f"erp:{key}"
        )


class NoErpOutbox:
    """For units of work that only read (diagnostics, tests): a write would lose its push."""

    async def product_changed(self, product_id: UUID) -> None:
        raise RuntimeError("this unit of work has no job queue; product changes need one")
