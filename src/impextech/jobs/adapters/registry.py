"""Where contexts declare their jobs: each kind, the handler a worker runs, periodic schedules.

Every process declares every kind (a web process enqueues them, a worker runs them), but only a
worker needs handlers, so a context declares a handler only in a worker (``assembly.process``).
"""

from __future__ import annotations

from dataclasses import dataclass

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.domain.model import JobKind, JsonObject
from impextech.jobs.service.ports import Handler, JobContext
from impextech.kernel.contexts import Key

# A job that does nothing: the worker's own health probe and the throughput benchmark's load.
NOOP = JobKind("platform.noop", queue="default", max_attempts=1, timeout_seconds=5)


async def noop(ctx: JobContext) -> JsonObject | None:
    return None


@dataclass(frozen=True, slots=True)
class Periodic:
    kind: JobKind
    cron: str


class JobRegistry:
    def __init__(self, queue: ProcrastinateQueue) -> None:
        self.queue = queue
        self.handlers: dict[JobKind, Handler] = {}
        self.periodic: list[Periodic] = []

    def declare(self, kind: JobKind, handler: Handler | None = None) -> None:
        """Make ``kind`` known in this process; ``handler`` runs it (workers only)."""
        self.queue.declare(kind)
        if handler is not None:
            self.handlers[kind] = handler

    def every(self, kind: JobKind, cron: str) -> None:
        """Run ``kind`` on a cron schedule, once per tick for every active marketplace."""
        self.queue.require_known(kind)
        self.periodic.append(Periodic(kind, cron))


JOB_REGISTRY: Key[JobRegistry] = Key("job registry")
