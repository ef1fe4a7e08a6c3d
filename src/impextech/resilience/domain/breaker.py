"""A circuit breaker: stop calling a partner that keeps failing, then probe it with one call.

Policy: the breaker opens after ``failure_threshold`` consecutive failures. A failure-rate window
needs a minimum volume before its rate means anything, and a partner such as a tenant's ERP sees
a handful of calls a minute; a run of consecutive failures is the signal that works at any volume,
is deterministic to test, and still ignores the odd isolated error (one success resets the run).

Once open it refuses calls for ``cool_down`` (callers get ``retry_at`` and reschedule instead of
waiting), then lets exactly ONE probe through (half-open). The probe's success closes the
breaker; its failure opens it for another cool-down. Everyone else asking while the probe is out
is refused and told to come back when the probe must have finished (``probe_timeout``, which
callers set to their call's own deadline, so waiting jobs are not held a whole cool-down after a
quick successful probe). A probe that never reports (its task was cancelled, its process froze)
is given up after ``probe_timeout``, so the breaker cannot wedge half-open.

Calls are tracked with a ``Ticket`` carrying the breaker's generation: an outcome reported by a
call admitted before the last state change (a slow call that started while closed and ends after
the breaker opened) is ignored, so a late success cannot close a breaker another failure opened.

All state changes happen under one lock and never across an ``await``, so one breaker may be
shared by every job of a process, threads and event loop alike.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from impextech.kernel.domain.clock import Clock


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cool_down: timedelta = timedelta(seconds=30)
    # How long a probe may be out; None: one cool-down.
    probe_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {self.failure_threshold}")
        if self.cool_down <= timedelta(0):
            raise ValueError(f"cool_down must be positive, not {self.cool_down}")
        if self.probe_timeout is not None and self.probe_timeout <= timedelta(0):
            raise ValueError(f"probe_timeout must be positive, not {self.probe_timeout}")

    @property
    def probe_allowance(self) -> timedelta:
        return self.cool_down if self.probe_timeout is None else self.probe_timeout


class CircuitOpen(Exception):
    """The breaker refused the call; try again at ``retry_at``."""

    def __init__(self, name: str, retry_at: datetime) -> None:
        super().__init__(f"circuit {name!r} is open; retry at {retry_at.isoformat()}")
        self.name = name
        self.retry_at = retry_at


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call; hand it back with ``succeeded``, ``failed`` or ``abandoned``."""

    generation: int
    probe: bool


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    retry_at: datetime | None
    opened_count: int


class CircuitBreaker:
    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._open_until: datetime | None = None
        self._probe_deadline: datetime | None = None
        self._opened_count = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    @property
    def retry_at(self) -> datetime | None:
        """When a refused caller should come back; None while the breaker is closed."""
        with self._lock:
            return self._retry_at()

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            return BreakerSnapshot(
                self._state, self._failures, self._retry_at(), self._opened_count
            )

    def _retry_at(self) -> datetime | None:
        if self._state is BreakerState.OPEN:
            return self._open_until
        if self._state is BreakerState.HALF_OPEN:
            return self._probe_deadline
        return None

    # -- calling ---------------------------------------------------------------------------

    def admit(self) -> Ticket:
        """A ticket for one call, or ``CircuitOpen`` carrying when to come back."""
        with self._lock:
            now = self._clock.now()
            if self._state is BreakerState.CLOSED:
                return Ticket(self._generation, probe=False)
            if self._state is BreakerState.HALF_OPEN:
                assert self._probe_deadline is not None
                if now < self._probe_deadline:
                    raise CircuitOpen(self.name, self._probe_deadline)
                # The probe never reported back: give up on it and send another.
            else:
                assert self._open_until is not None
                if now < self._open_until:
                    raise CircuitOpen(self.name, self._open_until)
            self._enter(BreakerState.HALF_OPEN)
            self._probe_deadline = now + self.policy.probe_allowance
            return Ticket(self._generation, probe=True)

    def succeeded(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.generation != self._generation:
                return
            if ticket.probe:
                self._enter(BreakerState.CLOSED)
            self._failures = 0

    def failed(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.generation != self._generation:
                return
            if ticket.probe:
                self._open()
                return
            self._failures += 1
            if self._failures >= self.policy.failure_threshold:
                self._open()

    def abandoned(self, ticket: Ticket) -> None:
        """The call ended with no verdict on the partner (cancelled): free a probe's slot."""
        with self._lock:
            if ticket.generation == self._generation and ticket.probe:
                # Back to open with the cool-down already over: the next caller probes.
                self._enter(BreakerState.OPEN)
                self._open_until = self._clock.now()

    def _open(self) -> None:
        self._enter(BreakerState.OPEN)
        self._open_until = self._clock.now() + self.policy.cool_down
        self._opened_count += 1

    def _enter(self, state: BreakerState) -> None:
        self._state = state
        self._generation += 1
        self._failures = 0
        self._open_until = None
        self._probe_deadline = None
