"""Jobs as the tenant sees them, and the rules deciding what happens after a failed attempt.

A job is a trigger: the domain's own state is the source of truth and a handler must be safe to
run twice. The queue machinery (Procrastinate) only carries a tenant id and a job id; this model
holds what a tenant may follow: state, attempts, progress, result and the last error.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from impextech.kernel.domain.errors import Conflict, ImpextechError, NotFound

JsonObject = Mapping[str, Any]

_KIND_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for its first run, or released to run again
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the last attempt failed; another is scheduled at next_attempt_at
    DEAD = "dead"  # no attempt left (or a permanent error): kept as a dead letter
    DISCARDED = "discarded"  # an operator gave up on a dead letter

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.DISCARDED})


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: a uniform wait in [0, min(cap, base * 2**n)).

    Full jitter spreads the retries of many jobs that failed together (a partner outage) over the
    whole window instead of sending them back in synchronised waves.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self, failed_attempts: int) -> float:
        """The window's upper bound after ``failed_attempts`` failures (1 = the first)."""
        exponent = min(max(failed_attempts - 1, 0), 62)
        return float(min(self.cap_seconds, self.base_seconds * 2.0**exponent))

    def delay(self, failed_attempts: int, rand: Callable[[], float] = random.random) -> float:
        return rand() * self.ceiling(failed_attempts)


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job: its queue, urgency, attempts, time limit and backoff."""

    name: str
    queue: str = "default"
    priority: int = 0  # higher runs first within a queue
    max_attempts: int = 5
    timeout_seconds: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not _KIND_NAME.match(self.name):
            raise ValueError(f"job kind name {self.name!r} is not a dotted lowercase name")
        if not self.queue.isidentifier():
            raise ValueError(f"queue name {self.queue!r} is not a plain name")
        if self.max_attempts < 1 or self.timeout_seconds <= 0:
            raise ValueError("a job kind needs at least one attempt and a positive timeout")


@dataclass(frozen=True, slots=True)
class Job:
    id: UUID
    tenant_id: UUID
    kind: str
    queue: str
    state: JobState
    attempts: int
    max_attempts: int
    progress_done: int | None
    progress_total: int | None
    result: JsonObject | None
    last_error: str | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def after_failure(
    kind: JobKind,
    attempts: int,
    now: datetime,
    *,
    permanent: bool = False,
    rand: Callable[[], float] = random.random,
) -> RetryAt | GiveUp:
    """What follows a failed attempt: another one after a jittered wait, or the dead letters."""
    if permanent:
        return GiveUp("permanent error")
    if attempts >= kind.max_attempts:
        return GiveUp(f"{attempts} of {kind.max_attempts} attempts failed")
    return RetryAt(now + timedelta(seconds=kind.backoff.delay(attempts, rand)))


def describe_error(exc: BaseException, limit: int = 2000) -> str:
    """The last error as an operator reads it: type and message, bounded in size."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RetryLater(Exception):
    """Raised by a handler that cannot work now (a partner's breaker is open).

    The job is rescheduled at ``at`` without spending an attempt, so an outage outside our control
    does not push healthy jobs into the dead letters.
    """

    def __init__(self, at: datetime, reason: str) -> None:
        super().__init__(reason)
        self.at = at
        self.reason = reason


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad input, a refused request)."""


class MissingTenant(ImpextechError):
    code = "job-without-tenant"
    title = "A job carried no tenant and was refused"


class JobNotFound(NotFound):
    code = "job-not-found"
    title = "No such job"


class JobNotDead(Conflict):
    code = "job-not-dead"
    title = "Only a dead job can be retried or discarded"
