"""A worker process for the crash and shutdown tests: ``python -m tests.support.worker_proc``.

Arguments: app conninfo, lease seconds, drain seconds. It serves one job kind, ``test.sleepy``,
which reports progress every 0.1 s for ``payload["seconds"]`` seconds and then succeeds.
"""

from __future__ import annotations

import asyncio
import sys

from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.api import JobContext, JobKind, JsonObject, WorkerProcess
from tests.support.jobs import make_runtime

SLEEPY = JobKind("test.sleepy", max_attempts=3, timeout_seconds=120)


async def sleepy(ctx: JobContext) -> JsonObject:
    steps = int(float(ctx.payload["seconds"]) * 10)
    for step in range(steps):
        await asyncio.sleep(0.1)
        await ctx.progress(step + 1, steps)
    return {"slept": ctx.payload["seconds"], "attempt": ctx.attempt}


def runtime(app_conninfo: str) -> JobRuntime:
    return make_runtime(app_conninfo, {SLEEPY: sleepy})


async def main(app_conninfo: str, lease: float, drain: float) -> None:
    worker = WorkerProcess(
        runtime(app_conninfo),
        (("default", 2),),
        lease_seconds=lease,
        drain_seconds=drain,
        poll_seconds=0.2,
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
