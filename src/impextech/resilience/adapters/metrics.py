"""Prometheus metrics of the circuit breakers."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from impextech.resilience.domain.breaker import BreakerState, CircuitBreaker


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
