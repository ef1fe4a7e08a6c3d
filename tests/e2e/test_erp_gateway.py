"""HttpErpGateway against the sandbox ERP over real HTTP: timeouts, failures and the breaker."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from impextech.catalog.adapters.erp_http import HttpErpGateway, erp_document
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.erp_sync import ErpRejected, ErpTransientError, ErpUnavailable
from impextech.kernel.domain.money import Money
from impextech.resilience.api import BreakerPolicy, BreakerState, CircuitBreaker
from impextech.sandbox.erp import ErpState, Faults, create_app
from impextech.sandbox.server import serving

pytestmark = pytest.mark.anyio

THRESHOLD = 3
COOL_DOWN = timedelta(seconds=30)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ManualClock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current


@dataclass
class Rig:
    gateway: HttpErpGateway
    breaker: CircuitBreaker
    clock: ManualClock
    erp: ErpState

    def faults(self, **settings: Any) -> None:
        self.erp.faults = Faults(**settings)


def product(version: int = 1, **changes: Any) -> Product:
    fields: dict[str, Any] = {
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
        "version": version,
        "created_at": T0,
        "updated_at": T0,
        **changes,
    }
    return Product(**fields)


def key(p: Product) -> str:
    return f"{p.tenant_id}:{p.id}:{p.version}"


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    erp = ErpState()
    clock = ManualClock()
    breaker = CircuitBreaker("erp", BreakerPolicy(THRESHOLD, COOL_DOWN), clock)
    async with serving(create_app(erp)) as url:
        gateway = HttpErpGateway(url, breaker, timeout=0.5)
        try:
            yield Rig(gateway, breaker, clock, erp)
        finally:
            await gateway.aclose()


async def test_a_push_upserts_the_record_with_its_idempotency_key(rig: Rig) -> None:
    p = product(status=ProductStatus.ARCHIVED)
    await rig.gateway.push_product(p, key(p))
    record = rig.erp.records[(str(p.tenant_id), str(p.id))]
    assert record.body == erp_document(p)
    assert record.body["status"] == "archived"
    assert set(rig.erp.answers) == {key(p)}
    assert rig.breaker.state is BreakerState.CLOSED


async def test_a_repeated_push_is_applied_once(rig: Rig) -> None:
    p = product()
    await rig.gateway.push_product(p, key(p))
    await rig.gateway.push_product(p, key(p))
    assert (rig.erp.stats.applied, rig.erp.stats.replayed) == (1, 1)


# Cut off "at the timeout" is shown without an upper wall-clock bound (a loaded machine may be
# late by seconds): the ERP would answer only after a minute, and it is still holding the
# request when the gateway has given up, so the gateway did not wait for it. The lower bound
# (never before the timeout) holds however slow the machine is.


async def test_a_slow_erp_is_cut_off_at_the_timeout(rig: Rig) -> None:
    rig.faults(latency_min=60, latency_max=60)
    started = time.monotonic()
    with pytest.raises(ErpTransientError, match=r"timed out after 0\.5 s"):
        await rig.gateway.push_product(product(), "k")
    assert time.monotonic() - started >= 0.5
    assert (rig.erp.stats.in_flight, rig.erp.stats.applied) == (1, 0)  # still sleeping
    assert rig.breaker.snapshot().consecutive_failures == 1


async def test_a_held_request_is_cut_off_at_the_timeout(rig: Rig) -> None:
    rig.faults(timeout_rate=1, hold=60)
    started = time.monotonic()
    with pytest.raises(ErpTransientError, match=r"timed out after 0\.5 s"):
        await rig.gateway.push_product(product(), "k")
    assert time.monotonic() - started >= 0.5
    stats = rig.erp.stats
    assert (stats.timeouts_injected, stats.in_flight, stats.applied) == (1, 1, 0)


async def test_a_dropped_connection_is_a_failure(rig: Rig) -> None:
    rig.faults(drop_rate=1)
    with pytest.raises(ErpTransientError, match="RemoteProtocolError"):
        await rig.gateway.push_product(product(), "k")
    assert rig.breaker.snapshot().consecutive_failures == 1


async def test_an_unreachable_erp_is_a_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    breaker = CircuitBreaker("erp", BreakerPolicy(THRESHOLD, COOL_DOWN), ManualClock())
    gateway = HttpErpGateway(f"http://127.0.0.1:{port}", breaker, timeout=0.5)
    try:
        with pytest.raises(ErpTransientError, match="ConnectError"):
            await gateway.push_product(product(), "k")
    finally:
        await gateway.aclose()
    assert breaker.snapshot().consecutive_failures == 1


async def test_5xx_failures_open_the_breaker_and_then_nothing_is_sent(rig: Rig) -> None:
    rig.faults(error_rate=1)
    for _ in range(THRESHOLD):
        with pytest.raises(ErpTransientError, match="503"):
            await rig.gateway.push_product(product(), "k")
    assert rig.breaker.state is BreakerState.OPEN
    sent = rig.erp.stats.requests
    with pytest.raises(ErpUnavailable) as caught:
        await rig.gateway.push_product(product(), "k")
    assert caught.value.retry_at == T0 + COOL_DOWN
    assert rig.erp.stats.requests == sent


async def test_a_half_open_probe_closes_the_breaker_once_the_erp_recovers(rig: Rig) -> None:
    rig.faults(error_rate=1)
    for _ in range(THRESHOLD):
        with pytest.raises(ErpTransientError):
            await rig.gateway.push_product(product(), "k")
    rig.faults()  # the ERP recovers
    rig.clock.current = T0 + COOL_DOWN
    sent = rig.erp.stats.requests
    p = product()
    await rig.gateway.push_product(p, key(p))  # the probe
    assert rig.breaker.state is BreakerState.CLOSED
    assert rig.erp.stats.requests == sent + 1
    assert (str(p.tenant_id), str(p.id)) in rig.erp.records


async def test_a_failed_probe_reopens_the_breaker(rig: Rig) -> None:
    rig.faults(drop_rate=1)
    for _ in range(THRESHOLD):
        with pytest.raises(ErpTransientError):
            await rig.gateway.push_product(product(), "k")
    rig.clock.current = T0 + COOL_DOWN
    with pytest.raises(ErpTransientError):
        await rig.gateway.push_product(product(), "k")
    assert rig.breaker.state is BreakerState.OPEN
    assert rig.breaker.retry_at == T0 + 2 * COOL_DOWN


async def test_concurrent_pushes_while_half_open_send_exactly_one_probe(rig: Rig) -> None:
    rig.faults(error_rate=1)
    for _ in range(THRESHOLD):
        with pytest.raises(ErpTransientError):
            await rig.gateway.push_product(product(), "k")
    rig.faults(latency_min=0.2, latency_max=0.2)
    rig.clock.current = T0 + COOL_DOWN
    sent = rig.erp.stats.requests
    products = [product() for _ in range(10)]
    outcomes = await asyncio.gather(
        *(rig.gateway.push_product(p, key(p)) for p in products), return_exceptions=True
    )
    assert sum(o is None for o in outcomes) == 1
    assert sum(isinstance(o, ErpUnavailable) for o in outcomes) == 9
    assert rig.erp.stats.requests == sent + 1
    assert rig.breaker.state is BreakerState.CLOSED


async def test_a_refused_push_is_permanent_and_does_not_trip_the_breaker(rig: Rig) -> None:
    p = product()
    await rig.gateway.push_product(p, "reused-key")
    for _ in range(THRESHOLD + 1):
        with pytest.raises(ErpRejected, match="422"):
            await rig.gateway.push_product(product(), "reused-key")
    assert rig.breaker.state is BreakerState.CLOSED
    assert rig.breaker.snapshot().consecutive_failures == 0


async def test_429_counts_as_a_failure() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"title": "slow down"})

    breaker = CircuitBreaker("erp", BreakerPolicy(1, COOL_DOWN), ManualClock())
    gateway = HttpErpGateway(
        "http://erp.invalid", breaker, timeout=0.5, transport=httpx.MockTransport(answer)
    )
    try:
        with pytest.raises(ErpTransientError, match="429"):
            await gateway.push_product(product(), "k")
    finally:
        await gateway.aclose()
    assert breaker.state is BreakerState.OPEN


async def test_a_cancelled_probe_frees_the_half_open_slot(rig: Rig) -> None:
    rig.faults(error_rate=1)
    for _ in range(THRESHOLD):
        with pytest.raises(ErpTransientError):
            await rig.gateway.push_product(product(), "k")
    rig.faults(latency_min=0.4, latency_max=0.4)
    rig.clock.current = T0 + COOL_DOWN
    probe = asyncio.create_task(rig.gateway.push_product(product(), "k1"))
    await asyncio.sleep(0.1)
    assert rig.breaker.state is BreakerState.HALF_OPEN
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    rig.faults()
    p = product()
    await rig.gateway.push_product(p, key(p))  # the next caller may probe at once
    assert rig.breaker.snapshot().state is BreakerState.CLOSED
