"""The jobs context's settings: which queues a worker serves, leases and draining."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from impextech.kernel.settings import Env, Setting, SettingsError


@dataclass(frozen=True)
class JobsSettings:
    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("IMPEXTECH_WORKER_QUEUES", "urgent:4,default:4,bulk:2", "Queues a worker "
                "serves, each with its own concurrency, so bulk work never takes urgent work's "
                "slots."),
        Setting("IMPEXTECH_JOB_LEASE_SECONDS", "30", "A job whose worker sent no heartbeat for "
                "this long (killed, frozen, cut off) is handed to another worker."),
        Setting("IMPEXTECH_WORKER_DRAIN_SECONDS", "30", "On SIGTERM, how long running jobs may "
                "finish before they are released back to the queue."),
    )  # fmt: skip

    worker_queues: tuple[tuple[str, int], ...]
    job_lease_seconds: int
    worker_drain_seconds: int

    @classmethod
    def from_env(cls, env: Env) -> Self:
        return cls(
            worker_queues=_queues(env.raw("IMPEXTECH_WORKER_QUEUES")),
            job_lease_seconds=env.integer("IMPEXTECH_JOB_LEASE_SECONDS", 2, 3600),
            worker_drain_seconds=env.integer("IMPEXTECH_WORKER_DRAIN_SECONDS", 0, 3600),
        )


def _queues(raw: str) -> tuple[tuple[str, int], ...]:
    queues: list[tuple[str, int]] = []
    for part in raw.split(","):
        name, _, slots = part.strip().partition(":")
        if not name.isidentifier() or not slots.isdigit() or not 1 <= int(slots) <= 256:
            raise SettingsError(
                f"IMPEXTECH_WORKER_QUEUES must look like urgent:4,bulk:2, not {raw!r}"
            )
        if any(name == seen for seen, _ in queues):
            raise SettingsError(f"IMPEXTECH_WORKER_QUEUES names {name!r} twice")
        queues.append((name, int(slots)))
    return tuple(queues)
