"""push_to_erp and the ERP push job handler on real PostgreSQL, then through the sandbox ERP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_job import erp_push_handler, make_erp_gateway
from impextech.catalog.adapters.erp_sql import SqlErpSyncUnitOfWork
from impextech.catalog.domain.model import Product
from impextech.catalog.service.erp_sync import (
    ErpRejected,
    ErpSync,
    ErpTransientError,
    ErpUnavailable,
    PushOutcome,
    PushResult,
)
from impextech.jobs.api import JobContext, PermanentJobError, RetryLater
from impextech.kernel.db import Database
from impextech.platform import database
from impextech.resilience.api import BreakerPolicy, CircuitBreaker
from impextech.sandbox.erp import ErpState, Faults, create_app
from impextech.sandbox.server import serving
from tests.support.world import Tenant, insert_product, make_tenant

pytestmark = pytest.mark.anyio


class RecordingErpGateway:
    """A hand-written fake of the ERP: remembers every push; fails when told to."""

    def __init__(self) -> None:
        self.pushes: list[tuple[Product, str]] = []
        self.failure: Exception | None = None

    async def push_product(self, product: Product, idempotency_key: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.pushes.append((product, idempotency_key))


@pytest.fixture
def tenants(clean_db: database.Conninfos) -> dict[str, Tenant]:
    """acme and globex with their users, made directly (these tests need no web app)."""
    return {slug: make_tenant(clean_db.owner, slug) for slug in ("acme", "globex")}


@pytest.fixture
async def app_db(clean_db: database.Conninfos) -> AsyncIterator[Database]:
    db = Database.connect(clean_db.app, size=2)
    yield db
    await db.dispose()


def sync(app_db: Database, gateway: RecordingErpGateway | HttpErpGateway | None) -> ErpSync:
    return ErpSync(lambda tenant_id: SqlErpSyncUnitOfWork(app_db, tenant_id), gateway)


def synced_version(owner: str, tenant: Tenant, product_id: uuid.UUID) -> int | None:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        row = conn.execute(
            "SELECT erp_synced_version FROM products WHERE id = %s", (product_id,)
        ).fetchone()
    assert row is not None
    value: int | None = row[0]
    return value


def change(owner: str, tenant: Tenant, product_id: uuid.UUID, **columns: object) -> None:
    """What the catalog's update does to the row: new values and the next version."""
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            f"UPDATE products SET {assignments}, version = version + 1 WHERE id = %s",  # noqa: S608
            (*columns.values(), product_id),
        )


def context(tenant: Tenant, payload: dict[str, Any]) -> JobContext:
    async def progress(done: int, total: int | None = None) -> None:
        return None

    return JobContext(
        tenant_id=tenant.id,
        job_id=uuid.uuid4(),
        kind="catalog.erp_push",
        attempt=1,
        payload=payload,
        progress=progress,
    )


async def test_a_push_sends_the_current_version_once_and_records_it(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-1")
    erp = RecordingErpGateway()
    assert synced_version(clean_db.owner, acme, product_id) is None

    first = await sync(app_db, erp).push_to_erp(acme.id, product_id)
    assert first == PushResult(PushOutcome.PUSHED, 1)
    [(sent, key)] = erp.pushes
    assert (sent.id, sent.version, sent.sku) == (product_id, 1, "TENT-1")
    assert key == f"{acme.id}:{product_id}:1"
    assert synced_version(clean_db.owner, acme, product_id) == 1

    again = await sync(app_db, erp).push_to_erp(acme.id, product_id)
    assert again == PushResult(PushOutcome.ALREADY_SYNCED, 1)
    assert len(erp.pushes) == 1


async def test_updates_and_archives_are_pushed_with_their_version(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-2")
    erp = RecordingErpGateway()
    await sync(app_db, erp).push_to_erp(acme.id, product_id)
    change(clean_db.owner, acme, product_id, stock=0)
    assert (await sync(app_db, erp).push_to_erp(acme.id, product_id)).version == 2
    change(clean_db.owner, acme, product_id, status="archived")
    assert (await sync(app_db, erp).push_to_erp(acme.id, product_id)).version == 3
    assert [(p.version, p.stock, p.status.value) for p, _ in erp.pushes] == [
        (1, 5, "active"),
        (2, 0, "active"),
        (3, 0, "archived"),
    ]
    assert [k.rsplit(":", 1)[1] for _, k in erp.pushes] == ["1", "2", "3"]
    assert synced_version(clean_db.owner, acme, product_id) == 3


async def test_without_an_erp_the_push_is_a_no_op(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-3")
    result = await sync(app_db, None).push_to_erp(acme.id, product_id)
    assert result == PushResult(PushOutcome.NO_ERP)
    assert synced_version(clean_db.owner, acme, product_id) is None
    handled = await erp_push_handler(app_db, None)(context(acme, {"product_id": str(product_id)}))
    assert handled == {"outcome": "no_erp", "version": None}


async def test_another_tenants_product_is_not_pushed(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme, globex = tenants["acme"], tenants["globex"]
    product_id = insert_product(clean_db.owner, acme, "TENT-4")
    erp = RecordingErpGateway()
    result = await sync(app_db, erp).push_to_erp(globex.id, product_id)
    assert result == PushResult(PushOutcome.NO_PRODUCT)
    assert erp.pushes == []
    assert synced_version(clean_db.owner, acme, product_id) is None


@pytest.mark.parametrize(
    "failure",
    [
        ErpTransientError("the ERP answered 503"),
        ErpRejected("the ERP refused the push with 422"),
        ErpUnavailable(datetime(2030, 1, 1, tzinfo=UTC)),
    ],
    ids=["transient", "rejected", "unavailable"],
)
async def test_a_failed_push_records_nothing(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos, failure: Exception
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-5")
    erp = RecordingErpGateway()
    erp.failure = failure
    with pytest.raises(type(failure)):
        await sync(app_db, erp).push_to_erp(acme.id, product_id)
    assert synced_version(clean_db.owner, acme, product_id) is None


async def test_the_synced_mark_never_moves_backwards(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-6")
    for version in (3, 2):
        async with SqlErpSyncUnitOfWork(app_db, acme.id) as uow:
            await uow.erp_sync.record_synced(product_id, version)
            await uow.commit()
    assert synced_version(clean_db.owner, acme, product_id) == 3


async def test_the_handler_waits_for_an_open_breaker_without_spending_an_attempt(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-7")
    erp = RecordingErpGateway()
    retry_at = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    erp.failure = ErpUnavailable(retry_at)
    with pytest.raises(RetryLater) as caught:
        await erp_push_handler(app_db, erp)(context(acme, {"product_id": str(product_id)}))
    assert caught.value.at == retry_at
    assert caught.value.reason == "erp breaker open"


async def test_the_handler_gives_up_on_a_refused_push_and_a_bad_payload(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-8")
    erp = RecordingErpGateway()
    erp.failure = ErpRejected("the ERP refused the push with 422: bad sku")
    handler = erp_push_handler(app_db, erp)
    with pytest.raises(PermanentJobError, match="bad sku"):
        await handler(context(acme, {"product_id": str(product_id)}))
    for payload in ({}, {"product_id": "not-a-uuid"}, {"product_id": None}):
        with pytest.raises(PermanentJobError, match="names no product"):
            await handler(context(acme, payload))


async def test_the_handler_lets_a_transient_failure_be_retried(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-9")
    erp = RecordingErpGateway()
    erp.failure = ErpTransientError("the ERP answered 503")
    with pytest.raises(ErpTransientError):
        await erp_push_handler(app_db, erp)(context(acme, {"product_id": str(product_id)}))


async def test_through_the_sandbox_a_lost_answer_is_retried_and_applied_once(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-10")
    state = ErpState(faults=Faults(drop_rate=1))
    async with serving(create_app(state)) as url:
        gateway = make_erp_gateway(url, timeout=2, breaker_failures=3, breaker_cool_down=30)
        assert gateway is not None
        try:
            handler = erp_push_handler(app_db, gateway)
            job = context(acme, {"product_id": str(product_id)})
            with pytest.raises(ErpTransientError):
                await handler(job)  # applied by the ERP, answer lost
            assert synced_version(clean_db.owner, acme, product_id) is None
            state.faults = Faults()
            assert await handler(job) == {"outcome": "pushed", "version": 1}
            assert await handler(job) == {"outcome": "already_synced", "version": 1}
        finally:
            await gateway.aclose()
    assert (state.stats.applied, state.stats.replayed, state.stats.requests) == (1, 1, 2)
    record = state.records[(str(acme.id), str(product_id))]
    assert (record.body["sku"], record.body["version"]) == ("TENT-10", 1)
    assert synced_version(clean_db.owner, acme, product_id) == 1


async def test_through_the_sandbox_an_open_breaker_postpones_the_job(
    tenants: dict[str, Tenant], app_db: Database, clean_db: database.Conninfos
) -> None:
    acme = tenants["acme"]
    product_id = insert_product(clean_db.owner, acme, "TENT-11")
    state = ErpState(faults=Faults(error_rate=1))
    async with serving(create_app(state)) as url:
        breaker = CircuitBreaker("erp", BreakerPolicy(2, timedelta(seconds=60)), _Clock())
        gateway = HttpErpGateway(url, breaker, timeout=2)
        try:
            handler = erp_push_handler(app_db, gateway)
            job = context(acme, {"product_id": str(product_id)})
            for _ in range(2):
                with pytest.raises(ErpTransientError):
                    await handler(job)
            with pytest.raises(RetryLater) as caught:
                await handler(job)
        finally:
            await gateway.aclose()
    assert caught.value.at == _Clock.AT + timedelta(seconds=60)
    assert state.stats.requests == 2


class _Clock:
    AT = datetime(2026, 3, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.AT
