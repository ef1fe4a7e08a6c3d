"""The ERP push as a job: what the job runtime runs for each product change.

The job carries only the product id; the handler reads the product when it runs. An open
breaker reschedules the job for when the breaker lets a probe through, without spending an
attempt; a push the ERP refuses is a permanent failure (straight to the dead letters, where an
operator can see why); anything else is retried with the kind's backoff.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_sql import SqlErpSyncUnitOfWork
from impextech.catalog.service.erp_sync import ErpGateway, ErpRejected, ErpSync, ErpUnavailable
from impextech.jobs.api import Handler, JobContext, JsonObject, PermanentJobError, RetryLater
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import Clock, SystemClock
from impextech.resilience.api import BreakerPolicy, CircuitBreaker


def make_erp_gateway(
    url: str | None,
    *,
    timeout: float,
    breaker_failures: int,
    breaker_cool_down: float,
    clock: Clock | None = None,
) -> HttpErpGateway | None:
    """The process's ERP gateway, or None when no ERP is configured (pushes are then no-ops)."""
    if not url:
        return None
    breaker = CircuitBreaker(
        "erp",
        BreakerPolicy(
            breaker_failures,
            timedelta(seconds=breaker_cool_down),
            # Jobs refused while the probe is out come back once its call must have ended.
            probe_timeout=timedelta(seconds=timeout + 1),
        ),
        clock or SystemClock(),
    )
    return HttpErpGateway(url, breaker, timeout=timeout)


def erp_push_handler(database: Database, gateway: ErpGateway | None) -> Handler:
    sync = ErpSync(lambda tenant_id: SqlErpSyncUnitOfWork(database, tenant_id), gateway)

    async def push(ctx: JobContext) -> JsonObject | None:
        raw = ctx.payload.get("product_id")
        try:
            product_id = UUID(str(raw))
        except ValueError:
            raise PermanentJobError(f"the job names no product: product_id={raw!r}") from None
        try:
            result = await sync.push_to_erp(ctx.tenant_id, product_id)
        except ErpUnavailable as exc:
            raise RetryLater(exc.retry_at, "erp breaker open") from None
        except ErpRejected as exc:
            raise PermanentJobError(exc.detail) from exc
        return result.to_json()

    return push
