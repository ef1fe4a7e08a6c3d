"""The circuit breaker's every transition, on a clock the test moves by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from impextech.resilience.api import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Ticket,
)

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COOL_DOWN = timedelta(seconds=30)


class ManualClock:
    def __init__(self) -> None:
        self.current = START

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def make(threshold: int = 3) -> tuple[CircuitBreaker, ManualClock]:
    clock = ManualClock()
    return CircuitBreaker("erp", BreakerPolicy(threshold, COOL_DOWN), clock), clock


def fail_times(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        breaker.failed(breaker.admit())


def refused_until(breaker: CircuitBreaker) -> datetime:
    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()
    return caught.value.retry_at


def test_a_new_breaker_is_closed_and_admits_calls() -> None:
    breaker, _ = make()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.retry_at is None
    assert breaker.admit() == Ticket(generation=0, probe=False)


def test_it_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker, _ = make(threshold=3)
    fail_times(breaker, 2)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 2
    fail_times(breaker, 1)
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.retry_at == START + COOL_DOWN
    assert breaker.snapshot().opened_count == 1


def test_a_success_resets_the_run_of_failures() -> None:
    breaker, _ = make(threshold=3)
    fail_times(breaker, 2)
    breaker.succeeded(breaker.admit())
    fail_times(breaker, 2)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 2


def test_an_open_breaker_refuses_with_the_time_to_come_back() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(29.9)
    assert refused_until(breaker) == START + COOL_DOWN
    assert breaker.snapshot().state is BreakerState.OPEN


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(30)
    probe = breaker.admit()
    assert probe.probe
    assert breaker.snapshot().state is BreakerState.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.retry_at is None
    assert not breaker.admit().probe


def test_a_failed_probe_reopens_for_a_full_cool_down() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(45)
    probe = breaker.admit()
    breaker.failed(probe)
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.retry_at == clock.current + COOL_DOWN
    assert refused_until(breaker) == clock.current + COOL_DOWN
    assert breaker.snapshot().opened_count == 2


def test_callers_during_half_open_are_refused_while_the_probe_is_out() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(30)
    probe = breaker.admit()
    clock.advance(1)
    assert refused_until(breaker) == START + 2 * COOL_DOWN
    assert refused_until(breaker) == START + 2 * COOL_DOWN
    assert breaker.snapshot().state is BreakerState.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.snapshot().state is BreakerState.CLOSED


def test_with_a_probe_timeout_callers_come_back_when_the_probe_must_be_done() -> None:
    clock = ManualClock()
    policy = BreakerPolicy(1, COOL_DOWN, probe_timeout=timedelta(seconds=6))
    breaker = CircuitBreaker("erp", policy, clock)
    fail_times(breaker, 1)
    clock.advance(30)
    lost = breaker.admit()
    assert refused_until(breaker) == START + COOL_DOWN + timedelta(seconds=6)
    clock.advance(6)
    assert breaker.admit().probe  # the first probe is given up after its allowance
    breaker.failed(lost)  # and its late verdict is ignored
    assert breaker.snapshot().state is BreakerState.HALF_OPEN


def test_concurrent_callers_in_half_open_get_exactly_one_probe() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(30)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        try:
            ticket = breaker.admit()
        except CircuitOpen:
            outcome = "open"
        else:
            outcome = "probe" if ticket.probe else "closed"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["open"] * 15 + ["probe"]


def test_a_probe_that_never_reports_is_replaced_after_a_cool_down() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(30)
    lost = breaker.admit()
    clock.advance(30)
    second = breaker.admit()
    assert second.probe
    breaker.succeeded(lost)  # too late: a newer probe owns the half-open state
    assert breaker.snapshot().state is BreakerState.HALF_OPEN
    breaker.failed(second)
    assert breaker.snapshot().state is BreakerState.OPEN


def test_an_abandoned_probe_lets_the_next_caller_probe_at_once() -> None:
    breaker, clock = make(threshold=1)
    fail_times(breaker, 1)
    clock.advance(30)
    breaker.abandoned(breaker.admit())
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.admit().probe


def test_abandoning_an_ordinary_call_changes_nothing() -> None:
    breaker, _ = make(threshold=2)
    fail_times(breaker, 1)
    breaker.abandoned(breaker.admit())
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 1


def test_outcomes_of_calls_admitted_before_the_breaker_opened_are_ignored() -> None:
    breaker, clock = make(threshold=2)
    slow = breaker.admit()
    fail_times(breaker, 2)
    assert breaker.snapshot().state is BreakerState.OPEN
    breaker.succeeded(slow)
    assert breaker.snapshot().state is BreakerState.OPEN
    clock.advance(30)
    probe = breaker.admit()
    breaker.failed(slow)  # a stale failure does not reopen a half-open breaker either
    assert breaker.snapshot().state is BreakerState.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.snapshot().state is BreakerState.CLOSED


def test_closing_again_starts_a_fresh_count() -> None:
    breaker, clock = make(threshold=2)
    fail_times(breaker, 2)
    clock.advance(30)
    breaker.succeeded(breaker.admit())
    fail_times(breaker, 1)
    assert breaker.snapshot().state is BreakerState.CLOSED
    fail_times(breaker, 1)
    assert breaker.snapshot().state is BreakerState.OPEN


@pytest.mark.parametrize(
    ("threshold", "seconds"), [(0, 30.0), (3, 0.0), (3, -1.0)], ids=["no-threshold", "zero", "neg"]
)
def test_a_policy_that_makes_no_sense_is_refused(threshold: int, seconds: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        BreakerPolicy(threshold, timedelta(seconds=seconds))


def test_a_probe_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="probe_timeout must be positive"):
        BreakerPolicy(3, COOL_DOWN, probe_timeout=timedelta(0))
