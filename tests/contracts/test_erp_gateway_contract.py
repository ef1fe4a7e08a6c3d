"""ErpGateway: HttpErpGateway against the sandbox ERP over HTTP, and FakeErpGateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.erp_sync import (
    ErpGateway,
    ErpRejected,
    ErpTransientError,
    idempotency_key,
)
from impextech.kernel.domain.money import Money
from impextech.resilience.api import BreakerPolicy, CircuitBreaker
from impextech.sandbox.erp import ErpState, Faults, create_app
from impextech.sandbox.server import serving
from tests.fakes.catalog import FakeErpGateway
from tests.fakes.clock import T0, ManualClock

pytestmark = pytest.mark.anyio


@dataclass
class ErpRig:
    gateway: ErpGateway
    versions: Callable[[], dict[tuple[uuid.UUID, uuid.UUID], int]]
    """The version the ERP holds for each (tenant, product)."""
    break_down: Callable[[], None]
    """From now on every push fails before the ERP applies anything."""


@pytest.fixture(params=["http", "fake"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[ErpRig]:
    if request.param == "fake":
        fake = FakeErpGateway()

        def fake_down() -> None:
            fake.failure = ErpTransientError("the ERP answered 503")

        yield ErpRig(fake, lambda: {k: p.version for k, p in fake.records.items()}, fake_down)
        return
    state = ErpState()
    # A breaker that stays closed: opening it is the HTTP adapter's own business.
    breaker = CircuitBreaker("erp", BreakerPolicy(1000, timedelta(seconds=30)), ManualClock())

    def versions() -> dict[tuple[uuid.UUID, uuid.UUID], int]:
        return {
            (uuid.UUID(account), uuid.UUID(ref)): record.body["version"]
            for (account, ref), record in state.records.items()
        }

    def http_down() -> None:
        state.faults = Faults(error_rate=1)

    async with serving(create_app(state)) as url:
        gateway = HttpErpGateway(url, breaker, timeout=5)
        try:
            yield ErpRig(gateway, versions, http_down)
        finally:
            await gateway.aclose()


def product(**changes: Any) -> Product:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "seller_id": uuid.uuid4(),
        "sku": "TENT-42",
        "name": "Storm Tent",
        "description": "",
        "category": "outdoor",
        "price": Money(12900, "EUR"),
        "stock": 4,
        "status": ProductStatus.ACTIVE,
        "version": 1,
        "created_at": T0,
        "updated_at": T0,
        **changes,
    }
    return Product(**values)


async def test_a_pushed_product_is_held_by_the_erp_at_its_version(rig: ErpRig) -> None:
    tent, lamp = product(), product(sku="LAMP-1", status=ProductStatus.ARCHIVED, version=3)
    await rig.gateway.push_product(tent, idempotency_key(tent))
    await rig.gateway.push_product(lamp, idempotency_key(lamp))
    assert rig.versions() == {(tent.tenant_id, tent.id): 1, (lamp.tenant_id, lamp.id): 3}


async def test_a_repeated_push_with_its_key_changes_nothing(rig: ErpRig) -> None:
    tent = product()
    newer = replace(tent, name="Storm Tent II", version=2)
    await rig.gateway.push_product(tent, idempotency_key(tent))
    await rig.gateway.push_product(newer, idempotency_key(newer))
    await rig.gateway.push_product(tent, idempotency_key(tent))  # a replay, answered as before
    assert rig.versions() == {(tent.tenant_id, tent.id): 2}


async def test_an_older_version_arriving_late_does_not_replace_a_newer_one(rig: ErpRig) -> None:
    tent = product(version=4)
    older = replace(tent, version=3, name="Older")
    await rig.gateway.push_product(tent, idempotency_key(tent))
    await rig.gateway.push_product(older, idempotency_key(older))
    assert rig.versions() == {(tent.tenant_id, tent.id): 4}


async def test_a_key_reused_for_another_document_is_refused(rig: ErpRig) -> None:
    tent = product()
    await rig.gateway.push_product(tent, idempotency_key(tent))
    with pytest.raises(ErpRejected):
        await rig.gateway.push_product(replace(tent, stock=0), idempotency_key(tent))
    assert rig.versions() == {(tent.tenant_id, tent.id): 1}


async def test_a_malformed_key_is_refused(rig: ErpRig) -> None:
    tent = product()
    with pytest.raises(ErpRejected):
        await rig.gateway.push_product(tent, "two words")
    assert rig.versions() == {}


async def test_a_failing_erp_is_a_transient_error_and_applies_nothing(rig: ErpRig) -> None:
    rig.break_down()
    tent = product()
    for _ in range(2):
        with pytest.raises(ErpTransientError):
            await rig.gateway.push_product(tent, idempotency_key(tent))
    assert rig.versions() == {}
