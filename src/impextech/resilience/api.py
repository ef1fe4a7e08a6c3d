"""The resilience context's public facade: breakers other contexts wrap their outside calls in."""

from impextech.resilience.adapters.metrics import BreakerGauges
from impextech.resilience.domain.breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Ticket,
)

__all__ = [
    "BreakerGauges",
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "Ticket",
]
