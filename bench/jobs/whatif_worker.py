"""`impextech worker` with several fetch loops per queue: a what-if, no change to src/.

    .venv/bin/python bench/jobs/whatif_worker.py --loops 4     (settings from the environment)

The platform's worker runs one library ``Worker`` per queue, and a library worker fetches its
jobs one query at a time, so one process can start jobs no faster than one fetch round trip
(a committed write) allows, whatever its slot count. This runs the same ``make_worker`` with
each queue of IMPEXTECH_WORKER_QUEUES split into ``--loops`` library workers (slots divided
between them), to measure what that would buy before anyone changes the runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from prometheus_client import CollectorRegistry

from impextech.platform import database as db
from impextech.platform.jobs import make_worker
from impextech.platform.logs import configure_logging
from impextech.platform.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--loops", type=int, default=4, help="library workers per queue (1..64)")
    args = ap.parse_args()
    if not 1 <= args.loops <= 64:
        ap.error("--loops must be 1..64")
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    infos = db.require_current(settings)
    split = tuple(
        (queue, max(1, slots // args.loops)) for queue, slots in settings.worker_queues
        for _ in range(args.loops)
    )  # fmt: skip
    settings = dataclasses.replace(settings, worker_queues=split)

    async def run() -> None:
        process, database = make_worker(settings, infos.app, CollectorRegistry())
        try:
            await process.run()
        finally:
            await database.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
