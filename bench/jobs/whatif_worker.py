"""`impextech worker` with each queue split into several queues first: a what-if, no src/ change.

    .venv/bin/python bench/jobs/whatif_worker.py --loops 4     (settings from the environment)

A library worker fetches its jobs one query at a time, so one fetch loop caps how fast a
process starts jobs whatever its slot count. Before f129be6 the platform's worker ran one library
worker per queue; this ran the same ``make_worker`` with each queue of IMPEXTECH_WORKER_QUEUES
split into ``--loops`` entries (slots divided between them), to measure what several fetch loops
would buy before the runtime changed. Since f129be6 the runtime splits a queue's slots itself
(``fetch_loops``), so with ``default:8`` and ``--loops 4`` this is the shipped split again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from impextech.jobs.api import worker_process
from impextech.jobs.settings import JobsSettings
from impextech.kernel.contexts import Process
from impextech.platform import database as db
from impextech.platform.assembly import assemble
from impextech.platform.logs import configure_logging
from impextech.platform.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--loops", type=int, default=4, help="library workers per queue (1..64)")
    args = ap.parse_args()
    if not 1 <= args.loops <= 64:
        ap.error("--loops must be 1..64")
    settings = Settings.from_env()
    configure_logging(settings.platform.log_format, settings.platform.log_level)
    infos = db.require_current(settings)
    split = tuple(
        (queue, max(1, slots // args.loops))
        for queue, slots in settings.section(JobsSettings).worker_queues
        for _ in range(args.loops)
    )  # fmt: skip
    jobs = dataclasses.replace(settings.section(JobsSettings), worker_queues=split)
    settings = settings.with_section(jobs)

    async def run() -> None:
        assembly = assemble(Process.WORKER, settings, infos.app)
        try:
            await worker_process(assembly).run()
        finally:
            await assembly.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
