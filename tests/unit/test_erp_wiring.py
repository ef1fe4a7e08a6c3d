"""How the composition root builds the ERP gateway from settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from impextech.catalog.adapters.erp_http import HttpErpGateway
from impextech.catalog.adapters.erp_job import make_erp_gateway
from impextech.resilience.api import BreakerPolicy

pytestmark = pytest.mark.anyio


def test_no_url_means_no_gateway() -> None:
    assert make_erp_gateway(None, timeout=5, breaker_failures=5, breaker_cool_down=30) is None
    assert make_erp_gateway("", timeout=5, breaker_failures=5, breaker_cool_down=30) is None


async def test_a_url_gives_a_gateway_whose_breaker_follows_the_settings() -> None:
    gateway = make_erp_gateway(
        "http://127.0.0.1:8100", timeout=2.5, breaker_failures=4, breaker_cool_down=12
    )
    assert isinstance(gateway, HttpErpGateway)
    try:
        assert gateway.breaker.policy == BreakerPolicy(
            4, timedelta(seconds=12), probe_timeout=timedelta(seconds=3.5)
        )
    finally:
        await gateway.aclose()
