"""The composition of the job runtime: every job kind the platform knows, and its handler.

The web process needs the kinds (to enqueue them); worker processes also need the handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from impextech.catalog.api import (
    ERP_PUSH,
    ERP_RECONCILE,
    ERP_RECONCILE_CRON,
    PRODUCT_IMPORT,
    ErpGateway,
    erp_push_handler,
    erp_reconcile_handler,
    import_handler,
    make_erp_gateway,
    product_imports,
)
from impextech.jobs.api import (
    Handler,
    JobContext,
    JobCounters,
    JobKind,
    JobRuntime,
    JsonObject,
    ProcrastinateQueue,
    WorkerProcess,
)
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform.settings import Settings
from impextech.resilience.api import BreakerState, CircuitBreaker

# A job that does nothing: the worker's own health probe and the throughput benchmark's load.
NOOP = JobKind("platform.noop", queue="default", max_attempts=1, timeout_seconds=5)


async def noop(ctx: JobContext) -> JsonObject | None:
    return None


def job_kinds() -> tuple[JobKind, ...]:
    return (NOOP, ERP_PUSH, ERP_RECONCILE, PRODUCT_IMPORT)


class BreakerGauges(Collector):
    """A breaker's state as this worker sees it (each process has its own breaker)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def collect(self) -> Iterator[Metric]:
        snapshot = self._breaker.snapshot()
        state = GaugeMetricFamily(
            "impextech_breaker_state",
            "1 for the breaker's current state",
            labels=["breaker", "state"],
        )
        for candidate in BreakerState:
            state.add_metric(
                [self._breaker.name, candidate.value], float(candidate is snapshot.state)
            )
        yield state
        opened = CounterMetricFamily(
            "impextech_breaker_opened", "Times the breaker opened", labels=["breaker"]
        )
        opened.add_metric([self._breaker.name], snapshot.opened_count)
        yield opened


async def active_tenants(database: Database) -> list[UUID]:
    """The marketplaces periodic jobs fan out to (the registry is global on purpose)."""
    async with database.transaction(None) as conn:
        cur = await conn.execute("SELECT id FROM tenants WHERE status = 'active' ORDER BY id")
        return [row.id for row in await cur.fetchall()]


def make_queue(settings: Settings, app_conninfo: str) -> ProcrastinateQueue:
    return ProcrastinateQueue(app_conninfo, job_kinds(), pool_size=settings.db_pool_size)


def handlers(
    settings: Settings,
    database: Database,
    queue: ProcrastinateQueue,
    gateway: ErpGateway | None,
) -> dict[JobKind, Handler]:
    imports = product_imports(database, queue, SystemClock())  # it queues ERP pushes
    return {
        NOOP: noop,
        ERP_PUSH: erp_push_handler(database, gateway),
        ERP_RECONCILE: erp_reconcile_handler(database, queue, erp_configured=gateway is not None),
        PRODUCT_IMPORT: import_handler(imports),
    }


def make_worker(
    settings: Settings,
    app_conninfo: str,
    registry: CollectorRegistry,
    *,
    name: str = "worker",
) -> tuple[WorkerProcess, Database]:
    """A worker process's parts; the caller disposes of the database when it stops."""
    database = Database.connect(app_conninfo, size=settings.db_pool_size)
    queue = make_queue(settings, app_conninfo)
    # One gateway per worker process: every ERP job in it shares one breaker.
    gateway = make_erp_gateway(
        settings.erp_url,
        timeout=settings.erp_timeout,
        breaker_failures=settings.erp_breaker_failures,
        breaker_cool_down=settings.erp_breaker_cool_down,
    )
    if gateway is not None:
        registry.register(BreakerGauges(gateway.breaker))
    runtime = JobRuntime(
        database,
        queue,
        handlers(settings, database, queue, gateway),
        counters=JobCounters(registry),
    )
    runtime.every(ERP_RECONCILE, ERP_RECONCILE_CRON, lambda: active_tenants(database))
    worker = WorkerProcess(
        runtime,
        settings.worker_queues,
        lease_seconds=settings.job_lease_seconds,
        drain_seconds=settings.worker_drain_seconds,
        name=name,
        on_stop=[gateway.aclose] if gateway is not None else [],
    )
    return worker, database
