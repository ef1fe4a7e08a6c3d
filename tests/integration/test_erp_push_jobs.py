"""ERP pushes run by a real worker against the sandbox ERP: an open breaker costs no attempt."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_job import erp_push_handler
from impextech.catalog.adapters.erp_outbox import ERP_PUSH
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.erp_sync import ErpTransientError
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.kernel.domain.money import Money
from impextech.platform import database
from impextech.resilience.api import BreakerPolicy, BreakerState, CircuitBreaker
from impextech.sandbox.erp import ErpState, Faults, create_app
from impextech.sandbox.server import serving
from tests.support.jobs import enqueue, job_row, make_runtime, running_worker, wait_for
from tests.support.world import Tenant, insert_product, make_tenant

pytestmark = pytest.mark.anyio

COOL_DOWN = 2.0


@pytest.fixture
def acme(clean_db: database.Conninfos) -> Tenant:
    return make_tenant(clean_db.owner, "acme")


@pytest.fixture
async def erp() -> AsyncIterator[tuple[ErpState, HttpErpGateway]]:
    state = ErpState()
    breaker = CircuitBreaker("erp", BreakerPolicy(1, timedelta(seconds=COOL_DOWN)), SystemClock())
    async with serving(create_app(state)) as url:
        gateway = HttpErpGateway(url, breaker, timeout=2)
        try:
            yield state, gateway
        finally:
            await gateway.aclose()


async def test_a_push_job_reaches_the_erp(
    clean_db: database.Conninfos, acme: Tenant, erp: tuple[ErpState, HttpErpGateway]
) -> None:
    state, gateway = erp
    product_id = insert_product(clean_db.owner, acme, "TENT-1")
    app_db = Database.connect(clean_db.app, size=2)
    runtime = make_runtime(clean_db.app, {ERP_PUSH: erp_push_handler(app_db, gateway)})
    try:
        async with running_worker(runtime, (("urgent", 2),)):
            job_id = await enqueue(
                clean_db.app, runtime, acme.id, ERP_PUSH, {"product_id": str(product_id)}
            )
            row = await wait_for(clean_db.owner, acme.id, job_id, {"succeeded", "dead"})
    finally:
        await app_db.dispose()
    assert row["state"] == "succeeded", row
    assert row["result"] == {"outcome": "pushed", "version": 1}
    assert row["attempts"] == 1
    assert state.records[(str(acme.id), str(product_id))].body["sku"] == "TENT-1"


async def test_while_the_breaker_is_open_the_job_waits_without_spending_attempts(
    clean_db: database.Conninfos, acme: Tenant, erp: tuple[ErpState, HttpErpGateway]
) -> None:
    state, gateway = erp
    product_id = insert_product(clean_db.owner, acme, "TENT-2")
    app_db = Database.connect(clean_db.app, size=2)
    runtime = make_runtime(clean_db.app, {ERP_PUSH: erp_push_handler(app_db, gateway)})
    try:
        async with running_worker(runtime, (("urgent", 2),)):
            # The ERP fails once: the breaker (threshold 1) opens for COOL_DOWN seconds...
            state.faults = Faults(error_rate=1)
            with pytest.raises(ErpTransientError):
                await gateway.push_product(_some_product(acme), "warm-up")
            retry_at = gateway.breaker.retry_at
            assert retry_at is not None
            # ...and recovers at once, which only a probe will find out.
            state.faults = Faults()
            requests_before = state.stats.requests
            job_id = await enqueue(
                clean_db.app, runtime, acme.id, ERP_PUSH, {"product_id": str(product_id)}
            )
            postponed = await wait_for(clean_db.owner, acme.id, job_id, {"queued"}, within=5)
            for _ in range(100):
                if postponed["last_error"] is not None or datetime.now(UTC) >= retry_at:
                    break
                await asyncio.sleep(0.02)
                postponed = job_row(clean_db.owner, acme.id, job_id) or postponed
            assert postponed["last_error"] == "erp breaker open", postponed
            assert postponed["attempts"] == 0
            assert postponed["next_attempt_at"] == retry_at
            row = await wait_for(
                clean_db.owner, acme.id, job_id, {"succeeded", "dead"}, within=COOL_DOWN + 15
            )
    finally:
        await app_db.dispose()
    assert row["state"] == "succeeded", row
    assert row["finished_at"] >= retry_at
    # One attempt in all, and one request: the half-open probe, which closed the breaker.
    assert row["attempts"] == 1
    assert state.stats.requests == requests_before + 1
    assert gateway.breaker.snapshot().state is BreakerState.CLOSED
    assert (str(acme.id), str(product_id)) in state.records


def _some_product(tenant: Tenant) -> Product:
    now = datetime.now(UTC)
    return Product(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        seller_id=tenant["seller"].id,
        sku="WARM-UP",
        name="Warm-up",
        description="",
        category="misc",
        price=Money(100, "EUR"),
        stock=1,
        status=ProductStatus.ACTIVE,
        version=1,
        created_at=now,
        updated_at=now,
    )
