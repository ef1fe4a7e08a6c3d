"""Throughput and pickup latency of no-op jobs: our runtime (Procrastinate) beside Celery + Redis.

    .venv/bin/python bench/jobs/throughput.py [--quick] [--jobs 20000] [--json out.json]

Usually run through bench/jobs/run.py, which also writes docs/benchmarks.md.

Drain: N no-op jobs (``platform.noop``) are enqueued in batches *before* any worker runs, then
`impextech worker` processes start and drain them; jobs/s = N / (last finish - first start), so
process start-up is not counted. Pickup: with the workers running and idle, jobs are enqueued one
per transaction on a fixed schedule (open loop, below capacity); pickup = start - enqueue, both
read from the ``jobs`` table (``created_at`` is taken just before the enqueuing transaction,
``started_at`` when the worker's wrapper starts the job). The library's own events
(``procrastinate_events``: deferred -> started, database clock) are reported beside it.

Celery is measured the same way in the same run: a throwaway venv (``uv venv`` + ``uv pip
install celery[redis]``, nothing in the project's requirements), the local Redis on
127.0.0.1:6379 as broker (keys under a per-run queue name, deleted at the end), a no-op task that
records its start time (``time.time()``) in a Redis list. Every phase is bounded in jobs and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from jobbench import BIN, HERE, Cluster, cluster, log, percentiles_ms

from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.api import NOOP, JobScheduling
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock

REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass(frozen=True)
class Plan:
    jobs: int  # drained per configuration
    batch: int  # jobs per enqueuing transaction (drain phase)
    rate: float  # pickup phase: jobs per second, open loop
    seconds: float  # pickup phase duration
    drain_timeout: float
    # (worker processes, slots per process, fetch loops per process); loops > 1 is the what-if
    # bench/jobs/whatif_worker.py, everything else is `impextech worker` as shipped
    ours: tuple[tuple[int, int, int], ...]
    # drained once more with fresh planner statistics (ANALYZE after the enqueue): a what-if
    analyzed: tuple[tuple[int, int, int], ...]
    celery: tuple[tuple[str, int], ...]  # (pool, concurrency)


FULL = Plan(jobs=20_000, batch=500, rate=50, seconds=20, drain_timeout=300,
            ours=((1, 8, 1), (2, 8, 1)), analyzed=((1, 8, 1),),
            celery=(("prefork", 2), ("threads", 8)))  # fmt: skip
QUICK = Plan(jobs=2_000, batch=500, rate=50, seconds=5, drain_timeout=60,
             ours=((1, 8, 1),), analyzed=((1, 8, 1),),
             celery=(("prefork", 2),))  # fmt: skip


# --- our runtime ------------------------------------------------------------------------------


async def enqueue_backlog(c: Cluster, tenant_id: UUID, n: int, batch: int) -> float:
    """N no-op jobs in transactions of ``batch``; the seconds it took."""
    database = Database.connect(c.app, size=2)
    scheduling = JobScheduling(ProcrastinateQueue(c.app, [NOOP]), SystemClock())
    began = time.perf_counter()
    try:
        for first in range(0, n, batch):
            async with database.transaction(tenant_id) as conn:
                scheduler = scheduling.in_transaction(conn, tenant_id)
                for _ in range(min(batch, n - first)):
                    await scheduler.enqueue(NOOP, {})
    finally:
        await database.dispose()
    return time.perf_counter() - began


async def enqueue_steady(
    c: Cluster, tenant_id: UUID, rate: float, seconds: float
) -> dict[str, Any]:
    """One job per transaction, job i due at start + i / rate (open loop); how late we were."""
    database = Database.connect(c.app, size=10)
    scheduling = JobScheduling(ProcrastinateQueue(c.app, [NOOP]), SystemClock())
    total = int(rate * seconds)
    lateness: list[float] = []

    async def one(due: float) -> None:
        lateness.append(time.perf_counter() - due)
        async with database.transaction(tenant_id) as conn:
            await scheduling.in_transaction(conn, tenant_id).enqueue(NOOP, {})

    try:
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        await database.dispose()
    return {"enqueued": total, "send_lateness": percentiles_ms(lateness)}


def succeeded(c: Cluster, tenant_id: UUID) -> int:
    # Only the benchmark's jobs: a worker also runs the platform's periodic jobs.
    rows = c.tenant_query(
        tenant_id, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND kind = %s", (NOOP.name,)
    )
    return int(rows[0][0])


def wait_succeeded(c: Cluster, tenant_id: UUID, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if succeeded(c, tenant_id) >= n:
            return True
        time.sleep(0.25)
    return False


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_cpu_seconds(c: Cluster) -> float:
    """CPU of the embedded postmaster and all its backends."""
    try:
        postmaster = int((c.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return math.nan
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def start_workers(c: Cluster, name: str, processes: int, slots: int, loops: int = 1) -> list[int]:
    env = c.env(IMPEXTECH_WORKER_QUEUES=f"default:{slots}", IMPEXTECH_DB_POOL_SIZE="10")
    argv = [str(BIN / "impextech"), "worker"]
    if loops > 1:
        argv = [sys.executable, str(HERE / "whatif_worker.py"), "--loops", str(loops)]
    pids = []
    for i in range(processes):
        proc = f"{name}-{i}"
        c.servers.start(proc, argv, env, c.data_dir / f"{proc}.log")
        pids.append(c.servers.procs[proc].pid)
    # Ready when every library worker has registered itself.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if c.owner_query("SELECT count(*) FROM procrastinate_workers")[0][0] >= processes * loops:
            return pids
        time.sleep(0.2)
    raise RuntimeError(f"{name}: workers did not register within 60 s")


def stop_workers(c: Cluster, name: str, processes: int) -> None:
    for i in range(processes):
        c.servers.stop(f"{name}-{i}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if c.owner_query("SELECT count(*) FROM procrastinate_workers")[0][0] == 0:
            return
        time.sleep(0.2)


def ours_drain(
    c: Cluster, plan: Plan, processes: int, slots: int, loops: int, *, analyze: bool = False
) -> dict[str, Any]:
    slug = f"drain{processes}x{slots}x{loops}" + ("-analyzed" if analyze else "")
    tenant_id = c.create_tenant("drain")
    log(f"ours {slug}: enqueue {plan.jobs} no-op jobs in batches of {plan.batch}")
    enqueue_s = asyncio.run(enqueue_backlog(c, tenant_id, plan.jobs, plan.batch))
    if analyze:
        # After a bulk enqueue the queue table's statistics are stale until autovacuum's next
        # analyze, and the library's fetch plan sorts every queued job; this is the fresh case.
        c.owner_exec("ANALYZE procrastinate_jobs")
    commits0, pg0 = c.pg_xact_commits(), pg_cpu_seconds(c)
    pids = start_workers(c, slug, processes, slots, loops)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    done = wait_succeeded(c, tenant_id, plan.jobs, plan.drain_timeout)
    cpu1, pg1, commits1 = sum(cpu_seconds(p) for p in pids), pg_cpu_seconds(c), c.pg_xact_commits()
    stop_workers(c, slug, processes)
    first, last, n = c.tenant_query(
        tenant_id,
        "SELECT min(started_at), max(finished_at), count(*) FROM jobs"
        " WHERE state = 'succeeded' AND kind = %s",
        (NOOP.name,),
    )[0]
    span = (last - first).total_seconds() if n else math.nan
    out = {
        "processes": processes, "slots": slots, "loops": loops, "analyzed": analyze,
        "jobs": plan.jobs,
        "drained": int(n),
        "complete": done, "enqueue_s": enqueue_s, "enqueue_rate": plan.jobs / enqueue_s,
        "span_s": span, "rate": n / span if n and span > 0 else math.nan,
        # CPU from worker start (includes start-up) to the last job; per job in ms.
        "worker_cpu_ms_per_job": (cpu1 - cpu0) * 1000 / max(1, n),
        "pg_cpu_ms_per_job": (pg1 - pg0) * 1000 / max(1, n),
        "commits_per_job": (commits1 - commits0) / max(1, n),
    }  # fmt: skip
    log(f"ours {slug}: {out['rate']:.0f} jobs/s over {span:.1f} s ({n} drained)")
    return out


def ours_pickup(c: Cluster, plan: Plan, processes: int, slots: int, loops: int) -> dict[str, Any]:
    slug = f"pickup{processes}x{slots}x{loops}"
    tenant_id = c.create_tenant("pickup")
    start_workers(c, slug, processes, slots, loops)
    try:
        # One job first, so every worker is listening and warm before the clock starts.
        asyncio.run(enqueue_backlog(c, tenant_id, 1, 1))
        if not wait_succeeded(c, tenant_id, 1, 30):
            raise RuntimeError("the warm-up job did not run")
        since = datetime.now(UTC)
        log(f"ours {slug}: pickup, {plan.rate:g} jobs/s for {plan.seconds:g} s")
        sent = asyncio.run(enqueue_steady(c, tenant_id, plan.rate, plan.seconds))
        done = wait_succeeded(c, tenant_id, 1 + sent["enqueued"], 60)
        rows = c.tenant_query(
            tenant_id,
            "SELECT extract(epoch FROM started_at - created_at) FROM jobs"
            " WHERE created_at >= %s AND started_at IS NOT NULL AND kind = %s",
            (since, NOOP.name),
        )
        events = c.owner_query(
            "SELECT extract(epoch FROM s.at - d.at) FROM procrastinate_events d"
            " JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started'"
            " WHERE d.type = 'deferred' AND d.at >= %s",
            (since,),
        )
    finally:
        stop_workers(c, slug, processes)
    out = {
        "processes": processes, "slots": slots, "loops": loops, "rate": plan.rate,
        "seconds": plan.seconds,
        "complete": done, **sent,
        "pickup": percentiles_ms([float(r[0]) for r in rows]),
        "library_pickup": percentiles_ms([float(r[0]) for r in events]),
    }  # fmt: skip
    log(f"ours pickup: p50 {out['pickup']['p50_ms']:.1f} ms, p99 {out['pickup']['p99_ms']:.1f} ms")
    return out


# --- Celery ---------------------------------------------------------------------------------

# The peer's app and its client in one module, written into the throwaway venv's folder: it
# imports celery and redis, which the project does not depend on (so it is not type-checked here).
CELERY_MODULE = """
import json, os, sys, time
import redis
from celery import Celery

BROKER = os.environ["BENCH_BROKER"]
QUEUE = os.environ["BENCH_QUEUE"]
KEY = QUEUE + ":started"
app = Celery("bench_peer", broker=BROKER)
app.conf.update(task_default_queue=QUEUE, task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)
_redis = redis.Redis.from_url(BROKER)


@app.task(name="bench.noop")
def noop(enqueued):
    _redis.rpush(KEY, "%r %r" % (enqueued, time.time()))


def main():
    cmd = sys.argv[1]
    if cmd == "send":
        n = int(sys.argv[2])
        began = time.perf_counter()
        for _ in range(n):
            noop.delay(time.time())
        print(json.dumps({"seconds": time.perf_counter() - began}))
    elif cmd == "steady":
        rate, seconds = float(sys.argv[2]), float(sys.argv[3])
        total = int(rate * seconds)
        late = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            late.append(time.perf_counter() - due)
            noop.delay(time.time())
        print(json.dumps({"enqueued": total, "lateness": late}))
    elif cmd == "collect":
        n, timeout = int(sys.argv[2]), float(sys.argv[3])
        deadline = time.monotonic() + timeout
        while _redis.llen(KEY) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        pairs = [tuple(float(x) for x in v.split()) for v in _redis.lrange(KEY, 0, -1)]
        print(json.dumps({"pairs": pairs}))
    elif cmd == "clear":
        _redis.delete(KEY)
    elif cmd == "purge":
        _redis.delete(KEY, QUEUE, "_kombu.binding." + QUEUE,
                      "_kombu.binding_permanent." + QUEUE)
        for key in _redis.scan_iter(QUEUE + "*"):
            _redis.delete(key)
    elif cmd == "version":
        import celery
        print(json.dumps({"celery": celery.__version__, "redis_py": redis.__version__,
                          "server": _redis.info("server")["redis_version"]}))


if __name__ == "__main__":
    main()
"""


class CeleryPeer:
    def __init__(self, work: Path, uv: Path) -> None:
        self.work = work
        self.venv = work / "celery-venv"
        self.py = self.venv / "bin" / "python"
        self.uv = uv
        self.queue = f"impextech-bench-{os.getpid()}"

    def install(self) -> dict[str, Any]:
        if not self.py.exists():
            log("installing Celery (celery[redis]) into a throwaway venv")
            subprocess.run([str(self.uv), "venv", "--quiet", str(self.venv)], check=True,
                           timeout=180)  # fmt: skip
            subprocess.run(
                [str(self.uv), "pip", "install", "--quiet", "--python", str(self.py),
                 "celery[redis]"], check=True, timeout=600,
            )  # fmt: skip
        (self.work / "bench_peer.py").write_text(CELERY_MODULE)
        versions: dict[str, Any] = json.loads(self.client("version"))
        return versions

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(BENCH_BROKER=REDIS_URL, BENCH_QUEUE=self.queue, PYTHONPATH=str(self.work))
        return env

    def client(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(self.py), str(self.work / "bench_peer.py"), *args], env=self.env(),
            cwd=self.work, capture_output=True, text=True, timeout=timeout, check=True,
        )  # fmt: skip
        return done.stdout

    def start(self, c: Cluster, name: str, pool: str, concurrency: int) -> int:
        argv = [str(self.venv / "bin" / "celery"), "-A", "bench_peer", "worker", "-P", pool,
                "-c", str(concurrency), "-Q", self.queue, "-l", "warning", "--without-gossip",
                "--without-mingle", "--without-heartbeat"]  # fmt: skip
        c.servers.start(name, argv, self.env(), c.data_dir / f"{name}.log")
        return c.servers.procs[name].pid

    def pairs(self, n: int, timeout: float) -> list[tuple[float, float]]:
        out = json.loads(self.client("collect", str(n), f"{timeout:g}", timeout=timeout + 60))
        return [(float(a), float(b)) for a, b in out["pairs"]]


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (Celery's prefork pool)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def celery_drain(c: Cluster, peer: CeleryPeer, plan: Plan, pool: str, conc: int) -> dict[str, Any]:
    peer.client("clear")
    log(f"celery {pool} -c {conc}: send {plan.jobs} tasks")
    sent = json.loads(peer.client("send", str(plan.jobs)))
    name = f"celery-{pool}-{conc}"
    pid = peer.start(c, name, pool, conc)
    cpu0 = tree_cpu_seconds(pid)
    pairs = peer.pairs(plan.jobs, plan.drain_timeout)
    cpu1 = tree_cpu_seconds(pid)
    c.servers.stop(name)
    starts = sorted(b for _, b in pairs)
    span = starts[-1] - starts[0] if len(starts) > 1 else math.nan
    out = {
        "pool": pool, "concurrency": conc, "jobs": plan.jobs, "drained": len(pairs),
        "complete": len(pairs) >= plan.jobs, "enqueue_s": sent["seconds"],
        "enqueue_rate": plan.jobs / sent["seconds"], "span_s": span,
        "rate": len(pairs) / span if span > 0 else math.nan,
        "worker_cpu_ms_per_job": (cpu1 - cpu0) * 1000 / max(1, len(pairs)),
    }  # fmt: skip
    log(f"celery {pool} -c {conc}: {out['rate']:.0f} jobs/s over {span:.1f} s")
    return out


def celery_pickup(c: Cluster, peer: CeleryPeer, plan: Plan, pool: str, conc: int) -> dict[str, Any]:
    name = f"celery-pickup-{pool}-{conc}"
    peer.client("clear")
    peer.start(c, name, pool, conc)
    try:
        peer.client("send", "1")
        if len(peer.pairs(1, 60)) < 1:
            raise RuntimeError("the Celery warm-up task did not run")
        peer.client("clear")
        log(f"celery {pool} -c {conc}: pickup, {plan.rate:g} tasks/s for {plan.seconds:g} s")
        sent = json.loads(
            peer.client("steady", f"{plan.rate:g}", f"{plan.seconds:g}",
                        timeout=plan.seconds + 120)
        )  # fmt: skip
        pairs = peer.pairs(sent["enqueued"], 60)
    finally:
        c.servers.stop(name)
    out = {
        "pool": pool, "concurrency": conc, "rate": plan.rate, "seconds": plan.seconds,
        "enqueued": sent["enqueued"], "complete": len(pairs) >= sent["enqueued"],
        "send_lateness": percentiles_ms(sent["lateness"]),
        "pickup": percentiles_ms([b - a for a, b in pairs]),
    }  # fmt: skip
    log(f"celery pickup: p50 {out['pickup']['p50_ms']:.1f} ms, p99 {out['pickup']['p99_ms']:.1f}")
    return out


# --- the run --------------------------------------------------------------------------------


def run(plan: Plan, work: Path | None = None) -> dict[str, Any]:
    work = work or Path(tempfile.mkdtemp(prefix="impextech-bench-celery-"))
    results: dict[str, Any] = {"plan": asdict(plan), "ours_drain": [], "ours_pickup": [],
                               "celery_drain": [], "celery_pickup": []}  # fmt: skip
    peer = CeleryPeer(work, BIN / "uv")
    results["celery_versions"] = peer.install()
    with cluster() as c:
        results["pool_size"] = c.settings().platform.db_pool_size
        for config in plan.ours:
            results["ours_drain"].append(ours_drain(c, plan, *config))
        for config in plan.analyzed:
            results["ours_drain"].append(ours_drain(c, plan, *config, analyze=True))
        for config in plan.ours:
            results["ours_pickup"].append(ours_pickup(c, plan, *config))
        try:
            for pool, conc in plan.celery:
                results["celery_drain"].append(celery_drain(c, peer, plan, pool, conc))
            results["celery_pickup"].append(celery_pickup(c, peer, plan, *plan.celery[0]))
        finally:
            peer.client("purge")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=0, help="jobs per drain (default: the plan's)")
    ap.add_argument("--json", type=Path, help="write the raw results here")
    ap.add_argument("--work", type=Path, help="reuse this folder for the Celery venv")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.jobs:
        if not 1 <= args.jobs <= 200_000:
            ap.error("--jobs must be 1..200000")
        plan = Plan(**{**asdict(plan), "jobs": args.jobs})
    results = run(plan, args.work)
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
