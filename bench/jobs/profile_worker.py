"""Where a draining `impextech worker` spends its time: py-spy, sampled, summarised.

    .venv/bin/python bench/jobs/profile_worker.py [--jobs 6000] [--seconds 12]

Enqueues N no-op jobs, starts one `impextech worker` (`default:8`), samples it with py-spy for
a few seconds while it drains (idle frames included, so waiting on PostgreSQL shows), and prints
the share of samples spent waiting and in the busiest functions of our code, the job library and
psycopg. py-spy comes from PyPI into a throwaway venv (the project's `uv`), never the project.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from jobbench import BIN, cluster, log
from throughput import enqueue_backlog, start_workers, stop_workers, wait_succeeded

WATCHED = ("impextech", "procrastinate", "psycopg")


def install_py_spy(work: Path) -> Path:
    venv = work / "py-spy-venv"
    subprocess.run([str(BIN / "uv"), "venv", "--quiet", str(venv)], check=True, timeout=180)
    subprocess.run(
        [str(BIN / "uv"), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "py-spy"], check=True, timeout=600,
    )  # fmt: skip
    return venv / "bin" / "py-spy"


def summarise(folded: Path, top: int) -> list[str]:
    total = 0
    waiting = 0
    inclusive: Counter[str] = Counter()
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        if "select (selectors.py" in frames[-1]:
            waiting += n
            continue
        for frame in set(frames):
            if any(name in frame for name in WATCHED):
                inclusive[frame] += n
    out = [f"samples: {total}; waiting in the event loop's select: {waiting / total:.0%}"]
    out += [f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=6000)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    if not 100 <= args.jobs <= 100_000 or not 1 <= args.seconds <= 120:
        ap.error("--jobs in 100..100000, --seconds in 1..120")
    with tempfile.TemporaryDirectory(prefix="impextech-bench-pyspy-") as tmp:
        work = Path(tmp)
        py_spy = install_py_spy(work)
        with cluster() as c:
            tenant_id = c.create_tenant("profile")
            asyncio.run(enqueue_backlog(c, tenant_id, args.jobs, 500))
            pids = start_workers(c, "profile", 1, 8)
            time.sleep(1)
            folded = work / "worker.folded"
            log(f"py-spy on worker {pids[0]} for {args.seconds:g} s")
            subprocess.run(
                [str(py_spy), "record", "-p", str(pids[0]), "-d", f"{args.seconds:g}", "-r",
                 "200", "-f", "raw", "-o", str(folded), "--idle", "--nonblocking"],
                check=True, timeout=args.seconds + 60, capture_output=True,
            )  # fmt: skip
            wait_succeeded(c, tenant_id, args.jobs, 300)
            stop_workers(c, "profile", 1)
            print("\n".join(summarise(folded, args.top)))


if __name__ == "__main__":
    main()
