"""The rules after a failed attempt: jittered exponential waits, a cap, and the dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impextech.jobs.adapters.worker import fetch_loops
from impextech.jobs.api import Backoff, JobKind
from impextech.jobs.domain.model import GiveUp, RetryAt, after_failure, describe_error

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_the_window_doubles_per_failure_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60)
    assert [backoff.ceiling(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff.ceiling(10_000) == 60  # no overflow far out


def test_full_jitter_spans_the_whole_window() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60)
    assert backoff.delay(3, rand=lambda: 0.0) == 0.0
    assert backoff.delay(3, rand=lambda: 0.5) == 4.0
    assert backoff.delay(3, rand=lambda: 0.999) == pytest.approx(7.992)


@given(st.integers(min_value=1, max_value=200))
def test_a_real_delay_stays_inside_its_window(failures: int) -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=300)
    assert 0 <= backoff.delay(failures) < backoff.ceiling(failures) <= 300


def test_another_attempt_is_scheduled_until_the_last_one() -> None:
    kind = JobKind("test.kind", max_attempts=3, backoff=Backoff(1, 10))
    first = after_failure(kind, 1, NOW, rand=lambda: 0.5)
    second = after_failure(kind, 2, NOW, rand=lambda: 0.5)
    assert first == RetryAt(NOW + timedelta(seconds=0.5))
    assert second == RetryAt(NOW + timedelta(seconds=1))
    assert after_failure(kind, 3, NOW) == GiveUp("3 of 3 attempts failed")


def test_a_permanent_error_is_not_retried() -> None:
    kind = JobKind("test.kind", max_attempts=9)
    assert after_failure(kind, 1, NOW, permanent=True) == GiveUp("permanent error")


@pytest.mark.parametrize(
    ("name", "queue", "attempts", "timeout"),
    [("Bad Name", "default", 1, 1), ("ok.name", "no-dash", 1, 1), ("ok", "q", 0, 1),
     ("ok", "q", 1, 0)],
)  # fmt: skip
def test_a_kind_refuses_nonsense(name: str, queue: str, attempts: int, timeout: float) -> None:
    with pytest.raises(ValueError, match=r"."):
        JobKind(name, queue=queue, max_attempts=attempts, timeout_seconds=timeout)


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base_seconds=10, cap_seconds=1)


def test_errors_are_described_briefly() -> None:
    assert describe_error(ValueError("bad sku")) == "ValueError: bad sku"
    assert describe_error(TimeoutError()) == "TimeoutError"
    long = describe_error(RuntimeError("x" * 5000))
    assert len(long) == 2000
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("slots", "loops"),
    [(1, [1]), (2, [2]), (3, [3]), (4, [2, 2]), (5, [3, 2]), (8, [2, 2, 2, 2]),
     (50, [13, 13, 12, 12])],
)  # fmt: skip
def test_a_queues_slots_are_spread_over_a_few_fetch_loops(slots: int, loops: list[int]) -> None:
    assert fetch_loops(slots) == loops
    assert sum(fetch_loops(slots)) == slots
