"""A worker's own metrics: its ERP breaker's state and how often it opened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from impextech.resilience.api import BreakerGauges, BreakerPolicy, CircuitBreaker


class Frozen:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 24, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def test_the_breaker_state_and_openings_are_exported() -> None:
    clock = Frozen()
    breaker = CircuitBreaker("erp", BreakerPolicy(2, timedelta(seconds=30)), clock)
    registry = CollectorRegistry()
    registry.register(BreakerGauges(breaker))

    def sample(text: str) -> float:
        for line in generate_latest(registry).decode().splitlines():
            if line.startswith(text + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{text} missing")

    assert sample('impextech_breaker_state{breaker="erp",state="closed"}') == 1
    for _ in range(2):
        breaker.failed(breaker.admit())
    assert sample('impextech_breaker_state{breaker="erp",state="open"}') == 1
    assert sample('impextech_breaker_state{breaker="erp",state="closed"}') == 0
    assert sample('impextech_breaker_opened_total{breaker="erp"}') == 1
