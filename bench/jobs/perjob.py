"""Where a no-op job's time goes: each database step of one job, timed alone, serially.

    .venv/bin/python bench/jobs/perjob.py [--jobs 2000]

Enqueues N no-op jobs, then plays one worker's database conversation for each job, step by step,
as the runtime does it (see src/impextech/jobs/adapters/runtime.py and sql.py), on one
synchronous psycopg connection per side, so client overhead is small and nothing runs
concurrently: the library's fetch (``procrastinate_fetch_job_v2``, autocommit), our wrapper's
start mark and success mark (``SqlJobLedger``: ``set_config``, ``SET LOCAL synchronous_commit =
off``, the UPDATE and COMMIT pipelined in one round trip), and the library's finish
(``procrastinate_finish_job_v1``). For each step: wall time and the PostgreSQL backend's CPU
(from /proc). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from jobbench import Cluster, cluster, log
from throughput import enqueue_backlog

_TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def measure(c: Cluster, tenant_id: UUID, n: int) -> dict[str, Any]:
    lib = psycopg.connect(c.app, autocommit=True)  # the library's connections are autocommit
    ours = psycopg.connect(c.app)  # ours: a transaction per unit of work
    lib_pid = lib.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    ours_pid = ours.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    ours.commit()
    row = lib.execute("SELECT * FROM procrastinate_register_worker_v1()").fetchone()
    assert row is not None
    worker_id = row[0]
    steps: dict[str, list[float]] = {k: [0.0, 0.0] for k in ("fetch", "start", "succeed", "finish")}
    tenant = str(tenant_id)

    def timed(name: str, pid: int, fn: Callable[[], Any]) -> Any:
        cpu0, t0 = backend_cpu(pid), time.perf_counter()
        out = fn()
        steps[name][0] += time.perf_counter() - t0
        steps[name][1] += backend_cpu(pid) - cpu0
        return out

    def fetch() -> Any:
        return lib.execute(
            "SELECT id, args FROM procrastinate_fetch_job_v2(%s::varchar[], %s)",
            (["default"], worker_id),
        ).fetchone()

    def transaction(
        sql: str, params: tuple[Any, ...], *, durable: bool = False
    ) -> Callable[[], Any]:
        """A mark as kernel.db.Database.execute_once sends it: one pipelined round trip."""

        def go() -> Any:
            with ours.pipeline():
                ours.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
                if not durable:
                    ours.execute("SET LOCAL synchronous_commit = off")
                cur = ours.execute(sql, params)
                ours.commit()
            return cur.fetchone() if cur.description is not None else None

        return go

    def finisher(queue_job_id: int) -> Callable[[], Any]:
        return lambda: lib.execute(
            "SELECT procrastinate_finish_job_v1(%s, 'succeeded', false)", (queue_job_id,)
        )

    done = 0
    began = time.perf_counter()
    while done < n:
        job = timed("fetch", lib_pid, fetch)
        if job is None or job[0] is None:
            break
        job_id = UUID(job[1]["job_id"])
        now = datetime.now(UTC)
        timed("start", ours_pid, transaction(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = %s,"
            " started_at = coalesce(started_at, %s), next_attempt_at = NULL"
            " WHERE id = %s AND state IN ('queued', 'running', 'failed')"
            " RETURNING kind, attempts, payload", (now, now, job_id)))  # fmt: skip
        timed("succeed", ours_pid, transaction(
            "UPDATE jobs SET state = 'succeeded', result = NULL, last_error = NULL,"
            " finished_at = %s, updated_at = %s WHERE id = %s"
            " AND state IN ('queued', 'running', 'failed')", (now, now, job_id)))  # fmt: skip
        timed("finish", lib_pid, finisher(job[0]))
        done += 1
    elapsed = time.perf_counter() - began
    # The same one-round-trip mark, durable, for scale (COMMIT waits for the WAL on disk).
    probe = transaction(
        "UPDATE jobs SET updated_at = updated_at WHERE id = %s", (job_id,), durable=True
    )
    t0 = time.perf_counter()
    for _ in range(200):
        probe()
    commit_ms = (time.perf_counter() - t0) * 1000 / 200
    lib.close()
    ours.close()
    per_job = {
        k: {"wall_ms": v[0] * 1000 / max(1, done), "pg_cpu_ms": v[1] * 1000 / max(1, done)}
        for k, v in steps.items()
    }
    return {
        "jobs": done,
        "serial_jobs_per_s": done / elapsed,
        "per_job": per_job,
        "commit_ms": commit_ms,
    }


# The candidate query inside procrastinate_fetch_job_v2 (procrastinate/sql/schema.sql), as it
# runs for `impextech worker` on the default queue.
FETCH_CANDIDATE = """
SELECT jobs.* FROM procrastinate_jobs AS jobs
WHERE NOT EXISTS (
    SELECT 1 FROM procrastinate_jobs AS other_jobs
    WHERE jobs.lock IS NOT NULL AND other_jobs.lock = jobs.lock
      AND (other_jobs.status = 'doing'
           OR (other_jobs.status = 'todo'
               AND (other_jobs.priority > jobs.priority
                    OR (other_jobs.priority = jobs.priority AND other_jobs.id < jobs.id)))))
  AND jobs.status = 'todo'
  AND jobs.queue_name = ANY(ARRAY['default']::varchar[])
  AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
ORDER BY jobs.priority DESC, jobs.id ASC LIMIT 1
FOR UPDATE OF jobs SKIP LOCKED
"""


def explain_fetch(jobs: int) -> dict[str, Any]:
    """The fetch's plan right after a bulk enqueue, then after ANALYZE (owner's connection)."""
    with cluster() as c:
        tenant_id = c.create_tenant("explain")
        asyncio.run(enqueue_backlog(c, tenant_id, jobs, 500))
        out: dict[str, Any] = {"jobs": jobs}
        with psycopg.connect(c.owner, autocommit=True) as conn:
            for when in ("after_enqueue", "after_analyze"):
                if when == "after_analyze":
                    conn.execute("ANALYZE procrastinate_jobs")
                # FOR UPDATE locks one row for the statement only (autocommit).
                rows = conn.execute(
                    b"EXPLAIN (ANALYZE, FORMAT JSON) " + FETCH_CANDIDATE.encode()
                ).fetchall()
                plan = rows[0][0][0]
                nodes: list[str] = []
                node = plan["Plan"]
                while node:
                    nodes.append(node["Node Type"])
                    node = (node.get("Plans") or [None])[0]
                out[when] = {"ms": plan["Execution Time"], "plan": " > ".join(nodes)}
        return out


def library_version() -> str:
    return importlib.metadata.version("procrastinate")


def run(jobs: int) -> dict[str, Any]:
    with cluster() as c:
        tenant_id = c.create_tenant("perjob")
        asyncio.run(enqueue_backlog(c, tenant_id, jobs, 500))
        log(f"playing {jobs} jobs' database steps one at a time")
        return measure(c, tenant_id, jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()
    if not 1 <= args.jobs <= 100_000:
        ap.error("--jobs must be 1..100000")
    print(json.dumps(run(args.jobs), indent=2))


if __name__ == "__main__":
    main()
