"""The background-jobs benchmarks (issue 3): slow partner, throughput vs Celery, per-job costs.

    .venv/bin/python bench/jobs/run.py                     # everything (about 20 minutes)
    .venv/bin/python bench/jobs/run.py --only slow         # slow partner only (about 5 minutes)
    .venv/bin/python bench/jobs/run.py --only throughput   # throughput + per-job steps
    .venv/bin/python bench/jobs/run.py --only steps        # the fetch against the queue's size
    .venv/bin/python bench/jobs/run.py --quick             # smoke run; docs untouched

A full run saves its raw figures in bench/jobs/results/<part>.json and rewrites the jobs section
of docs/benchmarks.md (between ``<!-- jobs:begin -->`` and ``<!-- jobs:end -->``) from the latest
saved figures of every part, so one part can be rerun without losing the others'. Everything
runs on 127.0.0.1, in temporary directories, and stops by itself; see bench/jobs/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import perjob
import slow_partner
import throughput
from jobbench import BEGIN, END, HERE, log, machine, stop_on_signals, write_section

RESULTS = HERE / "results"
HISTORY = RESULTS / "history.jsonl"  # key figures of every full run, for the spread
PARTS = ("slow", "throughput", "steps")
STEP_SIZES = (500, 2000, 4000)  # jobs replayed by perjob.py in the "steps" part


def key_figures(part: str, r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "part": part,
        "when": r["when"],
        "load": r["machine"]["load"],
        "commit": r["machine"]["commit"],
    }
    if part == "steps":
        out["fetch_pg_cpu_ms"] = {
            n: round(x["per_job"]["fetch"]["pg_cpu_ms"], 2) for n, x in r["sizes"].items()
        }
    elif part == "slow":
        out["queued_p99_ms"] = r["queued"]["load"]["p99_ms"]
        out["queued_5xx"] = _statuses(r["queued"]["load"])[1]
        out["inline_p99_ms"] = r["inline"]["load"]["p99_ms"]
        out["inline_5xx"] = _statuses(r["inline"]["load"])[1]
        out["warm_up"] = "no_worker" in r
    else:
        out["drain"] = {_ours_label(x): round(x["rate"]) for x in r["ours_drain"]}
        out["celery"] = {f"{x['pool']} -c {x['concurrency']}": round(x["rate"])
                         for x in r["celery_drain"]}  # fmt: skip
        out["pickup_p50_ms"] = [round(x["pickup"]["p50_ms"], 1) for x in r["ours_pickup"]]
    return out


def history_lines(part: str) -> list[str]:
    if part == "steps" or not HISTORY.exists():
        return []
    runs = [json.loads(line) for line in HISTORY.read_text().splitlines() if line.strip()]
    runs = [x for x in runs if x["part"] == part]
    if len(runs) < 2:
        return []
    lines = ["", "Every full run so far (bench/jobs/results/history.jsonl), for the spread:", ""]
    if part == "slow":
        met = sum(1 for x in runs if x["queued_p99_ms"] < 50 and x["queued_5xx"] == 0)
        lines[1] = (
            f"Every full run so far (bench/jobs/results/history.jsonl), for the spread: the queued"
            f" endpoint met p99 < 50 ms with no 5xx in {met} of {len(runs)}; the inline baseline"
            " answered 5xx to most creations in every one."
        )
    for x in runs:
        if part == "slow":
            lines.append(
                f"- {x['when']} (commit {x.get('commit', '?')}, load {x['load']}): queued p99"
                f" {_f(x['queued_p99_ms'])} ms,"
                f" {x['queued_5xx']} × 5xx; inline p99 {_f(x['inline_p99_ms'] / 1000, 1)} s,"
                f" {x['inline_5xx']} × 5xx"
                + ("" if x.get("warm_up") else " (no warm-up before the measured load)")
            )
        else:
            drains = "; ".join(f"{k}: {v}/s" for k, v in x["drain"].items())
            celery = "; ".join(f"Celery {k}: {v}/s" for k, v in x["celery"].items())
            lines.append(
                f"- {x['when']} (commit {x.get('commit', '?')}, load {x['load']}): {drains};"
                f" {celery}; pickup p50"
                f" {', '.join(f'{v:g}' for v in x['pickup_p50_ms'])} ms"
            )
    return lines


def _f(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def stamp(command: str) -> dict[str, Any]:
    return {
        "machine": machine(),
        "when": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "command": command,
    }


def machine_line(r: dict[str, Any]) -> str:
    m = r["machine"]
    return (
        f"Measured {r['when']} with `{r['command']}` on {m['cpus']} cores ({m['cpu']}),"
        f" {m['memory']}, Linux {m['kernel']}, Python {m['python']}, commit {m['commit']};"
        f" load average {m['load']} at the start and {r.get('load_end', '?')} at the end"
        " (other engineers' jobs shared the 2 cores)."
    )


# --- slow partner ---------------------------------------------------------------------------


def _statuses(load: dict[str, Any]) -> tuple[int, int, int, int]:
    st = {int(k): v for k, v in load["statuses"].items()}
    ok = sum(v for k, v in st.items() if 200 <= k < 300)
    five = sum(v for k, v in st.items() if k >= 500)
    busy = st.get(503, 0)
    errors = sum(load["errors"].values())
    return ok, five, busy, errors


def _no_worker_row(r: dict[str, Any]) -> list[str]:
    if "no_worker" not in r:
        return []
    nl = r["no_worker"]["load"]
    ok, five, busy, err = _statuses(nl)
    return [
        f"| `POST /api/v1/products` again, no worker running (pushes only queued; diagnostic) |"
        f" {_f(nl['p50_ms'])} ms | {_f(nl['p95_ms'])} ms | {_f(nl['p99_ms'])} ms |"
        f" {_f(nl['max_ms'])} ms | {ok} | {five} | {busy} | {err} | | |"
    ]


def _timeline(load: dict[str, Any]) -> str:
    worst = load.get("worst_per_second_ms")
    return ", ".join(f"{x:.0f}" for x in worst) if worst else "not recorded in this run"


SLOW_NOTES = """\
Reading the slow-partner figures: the queued endpoint does the same work with or without
workers (a product, a job row and its queue entry in one transaction); the diagnostic row is
that endpoint with nothing else running but the load. Its tail with workers moves a lot from
run to run on this shared machine (the list below): the workers' own bursts ({workers} × {slots}
slots against an ERP that answers every call after exactly {latency:g} s, so pushes start and
finish in waves of up to {wave}) and other engineers' jobs on the same 2 cores both land on the
one web process. The slowest answer in each second of the load, listed above, shows whether
slow answers came in waves {latency:g} s apart (the workers) or at random. In production the
workers run on their own machines; here they share the 2 cores on purpose, as `impextech demo`
does."""


def slow_markdown(r: dict[str, Any]) -> list[str]:
    p = r["plan"]
    q, i = r["queued"], r["inline"]
    ql, il = q["load"], i["load"]
    q_ok, q_5xx, q_busy, q_err = _statuses(ql)
    i_ok, i_5xx, i_busy, i_err = _statuses(il)
    total = int(p["rate"] * p["duration"])
    calls = i.get("erp_calls", {})
    pool_waits = calls.get("PoolTimeout", 0)
    at_end, after = q["pushes_at_end"], q["pushes_after_drain"]
    errs = q.get("push_errors", {})
    return [
        f"### Slow partner: ERP at {r['erp_latency_s']:g} s, {p['rate']:g} product creations/s"
        f" for {p['duration']:g} s, open loop",
        "",
        machine_line(r),
        "",
        f"Both endpoints ran on bench/jobs/slow_server.py: `create_app()` exactly as"
        f" `impextech serve` builds it (one uvicorn process, access log off, psycopg pool of"
        f" {r['pool_size']} connections, pool wait 10 s), in a fresh process per endpoint,"
        f" against one `impextech sandbox erp --latency {r['erp_latency_s']:g}` and one embedded"
        " PostgreSQL."
        f" Load: bench/jobs/openloop.py (bench/api/loadgen.py's open loop: request *i* due at"
        f" start + i/{p['rate']:g}, latency from that time, up to 1,200 connections so the"
        f" generator never holds a request back), {total:,} creations per endpoint, each with"
        f" its own SKU, as the tenant's admin; answers awaited up to {p['grace']:g} s after the"
        f" last was due. `IMPEXTECH_ERP_TIMEOUT={r['erp_timeout_s']:g}` for both (the default"
        f" 5 s would fail every 8 s call and open the breaker). Queued: {p['workers']}"
        f" × `impextech worker` with `IMPEXTECH_WORKER_QUEUES=urgent:{r['worker_slots']}`"
        f" (the ERP gateway holds at most 50 connections per process). Inline: the same create,"
        f" then httpx to the ERP in the request with the gateway's timeouts and 50-connection"
        f" limit; no worker ran (its queued pushes stayed queued).",
        "",
        "| endpoint | p50 | p95 | p99 | max | 2xx | 5xx | of which 503 busy (DB pool) |"
        " generator errors | goal | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| `POST /api/v1/products` (push queued in the same transaction) |"
        f" {_f(ql['p50_ms'])} ms | {_f(ql['p95_ms'])} ms | {_f(ql['p99_ms'])} ms |"
        f" {_f(ql['max_ms'])} ms | {q_ok} | {q_5xx} | {q_busy} | {q_err} |"
        f" p99 < 50 ms, no 5xx | {verdict(ql['p99_ms'] < 50 and q_5xx == 0 and q_err == 0)} |",
        f"| `POST /bench/products-inline` (ERP called in the request; baseline) |"
        f" {_f(il['p50_ms'] / 1000, 2)} s | {_f(il['p95_ms'] / 1000, 2)} s |"
        f" {_f(il['p99_ms'] / 1000, 2)} s | {_f(il['max_ms'] / 1000, 2)} s | {i_ok} | {i_5xx} |"
        f" {i_busy} | {i_err} | | |",
        *_no_worker_row(r),
        "",
        f"- Queued: {q['products']:,} products created; at the end of the load the pushes were"
        f" {', '.join(f'{k} {v:,}' for k, v in sorted(at_end.items()))}"
        f" (ERP: {q['erp_at_end'].get('applied', 0):,} applied, "
        f"{q['erp_at_end'].get('in_flight', 0)} in flight); "
        + (
            f"all {after.get('succeeded', 0):,} pushed after {_f(q['drain_s'], 0)} s more"
            if q["drained"]
            else f"after {_f(q['drain_s'], 0)} s of drain (the limit): "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(after.items()))
        )
        + f" (ERP: {q['erp_after_drain'].get('applied', 0):,} applied, at most"
        f" {q['erp_after_drain'].get('max_in_flight', 0)} calls at once)."
        + (
            " Pushes that failed at least once: "
            + "; ".join(f"{k}: {v}" for k, v in errs.items())
            + "."
            if errs
            else " No push failed."
        ),
        f"- Inline: {i_ok:,} of {total:,} creations answered 2xx; {i_5xx:,} answered 5xx"
        f" ({il['statuses'].get('504', 0):,} × 504 after waiting"
        f" {r['erp_timeout_s']:g} s for one of the 50 ERP connections: httpx `PoolTimeout`"
        f" {pool_waits:,}; the ERP applied {i['erp'].get('applied', 0):,} calls, at most"
        f" {i['erp'].get('max_in_flight', 0)} at once). Yet every one of the"
        f" {i['products']:,} products was committed before its ERP call: the caller was told"
        f" 5xx for a product that exists and will never reach the ERP from this path. Up to"
        f" {il.get('peak_in_flight', '?')} requests were held open at once.",
        f"- Slowest answer in each second of the load, queued (ms): {_timeline(ql)}.",
        *(
            [f"- … and with no worker running (ms): {_timeline(r['no_worker']['load'])}."]
            if "no_worker" in r
            else []
        ),
        "",
        SLOW_NOTES.format(
            workers=p["workers"],
            slots=r["worker_slots"],
            latency=r["erp_latency_s"],
            wave=p["workers"] * r["worker_slots"],
        ),
    ]


# --- throughput -----------------------------------------------------------------------------


def _ours_label(x: dict[str, Any]) -> str:
    base = f"ours: {x['processes']} × `impextech worker`, `default:{x['slots']}`"
    if x.get("loops", 1) > 1:
        base = (
            f"what-if: {x['processes']} × bench/jobs/whatif_worker.py, {x['loops']} fetch loops"
            f" × {x['slots'] // x['loops']} slots (the split `impextech worker` makes itself"
            " since f129be6)"
        )
    if x.get("analyzed"):
        base = (
            base.replace("ours: ", "what-if: ") + ", `ANALYZE procrastinate_jobs` after the enqueue"
        )
    return base


def _shipped(x: dict[str, Any]) -> bool:
    return x.get("loops", 1) == 1 and not x.get("analyzed")


def throughput_markdown(r: dict[str, Any]) -> list[str]:
    p = r["plan"]
    v = r["celery_versions"]
    lines = [
        "### Throughput and pickup latency: no-op jobs, ours (Procrastinate"
        f" {r.get('procrastinate', '?')}) beside Celery {v['celery']} + Redis {v['server']}",
        "",
        machine_line(r),
        "",
        f"Drain: {p['jobs']:,} no-op jobs (`platform.noop`) enqueued before any worker started,"
        f" {p['batch']} per transaction (ours) or one `delay()` each (Celery); jobs/s = jobs /"
        " (last finish − first start), so start-up is not counted. Ours: `impextech worker`"
        " processes (a queue's slots spread over library fetch loops since"
        " f129be6, `default:8` → 4; database pool 10 + library pool 10 per process,"
        " `IMPEXTECH_LOG_LEVEL=warning`), durable PostgreSQL commits (fsync on)."
        " Celery: `celery worker` from a throwaway venv, the local Redis at 127.0.0.1:6379"
        ' (as found: persistence off, `appendonly no`, `save ""`),'
        " `--without-gossip --without-mingle --without-heartbeat`,"
        " default prefetch (4), task result ignored; the task records `time.time()` at its start"
        " in a Redis list. CPU per job: the worker processes (and for ours the embedded"
        " PostgreSQL) from /proc; Redis's CPU is not counted.",
        "",
        "| system | jobs | enqueue (jobs/s) | drained (jobs/s) | worker CPU ms/job |"
        " PostgreSQL CPU ms/job | transactions/job | goal | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["ours_drain"]:
        shipped = _shipped(x)
        lines.append(
            f"| {_ours_label(x)} | {x['drained']:,}/{x['jobs']:,} | {_f(x['enqueue_rate'], 0)} |"
            f" {_f(x['rate'], 0)} | {_f(x['worker_cpu_ms_per_job'], 2)} |"
            f" {_f(x['pg_cpu_ms_per_job'], 2)} | {_f(x['commits_per_job'], 1)} |"
            + (f" ≥ 1,000 | {verdict(x['rate'] >= 1000)} |" if shipped else " | |")
        )
    for x in r["celery_drain"]:
        lines.append(
            f"| Celery: `-P {x['pool']} -c {x['concurrency']}` | {x['drained']:,}/{x['jobs']:,} |"
            f" {_f(x['enqueue_rate'], 0)} | {_f(x['rate'], 0)} |"
            f" {_f(x['worker_cpu_ms_per_job'], 2)} | n/a (Redis) | n/a | | |"
        )
    lines += [
        "",
        f"Pickup latency (start − enqueue): workers running and idle, {p['rate']:g} jobs/s for"
        f" {p['seconds']:g} s, open loop, one job per transaction (ours: `created_at` taken just"
        " before the enqueuing transaction, `started_at` when the worker's wrapper starts the job,"
        " same clock; library view: `procrastinate_events` deferred → started, database clock)."
        f" The rate is below the slowest configuration's drain rate, so this measures pickup,"
        f" not a backlog.",
        "",
        "| system | p50 | p90 | p99 | max | jobs | goal | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["ours_pickup"]:
        pk, lib = x["pickup"], x["library_pickup"]
        shipped = _shipped(x)
        lines.append(
            f"| {_ours_label(x)} | {_f(pk['p50_ms'])} ms | {_f(pk['p90_ms'])} ms |"
            f" {_f(pk['p99_ms'])} ms | {_f(pk['max_ms'])} ms | {int(pk['n']):,} |"
            + (f" p50 ≤ 20 ms | {verdict(pk['p50_ms'] <= 20)} |" if shipped else " | |")
        )
        lines.append(
            f"| … the library's own view (events) | {_f(lib['p50_ms'])} ms |"
            f" {_f(lib['p90_ms'])} ms | {_f(lib['p99_ms'])} ms | {_f(lib['max_ms'])} ms |"
            f" {int(lib['n']):,} | | |"
        )
    for x in r["celery_pickup"]:
        pk = x["pickup"]
        lines.append(
            f"| Celery: `-P {x['pool']} -c {x['concurrency']}` | {_f(pk['p50_ms'])} ms |"
            f" {_f(pk['p90_ms'])} ms | {_f(pk['p99_ms'])} ms | {_f(pk['max_ms'])} ms |"
            f" {int(pk['n']):,} | | |"
        )
    return lines


NOTES = """\
#### What limits our throughput, and what would lift it

From the figures above and below, a py-spy profile of a draining worker
(`bench/jobs/profile_worker.py`), and the code path of one job. Since f129be6 (02:49 UTC) the
runtime already does two things these benchmarks showed: each bookkeeping mark is one pipelined
round trip that commits without waiting for its WAL flush, and a queue's slots are spread over
several library fetch loops (`fetch_loops`: `default:8` → 4 loops), because one library worker
fetches one job per round trip. Runs before that commit (see the list) measured the runtime
without them.

- **Stale statistics after a bulk enqueue.** Right after thousands of jobs land in the queue
  table, its planner statistics still describe the table before them, and the library's fetch
  is planned as "read every queued job, sort, take the first" instead of an index scan that
  stops at one row (last table of this section); each fetch then costs in proportion to the
  backlog until autovacuum's next analyze. Every drain above starts in that state (the jobs are
  enqueued just before the workers start), the first one of a run worst of all: its table was
  last analyzed empty, while later drains find statistics that autovacuum took during an
  earlier one. So the first row (1 × `impextech worker`) pays the most; the "ANALYZE after the
  enqueue" row drains the same backlog with the same worker and fresh statistics.
  Migration 0003 (since 11835d5) gives `procrastinate_jobs` a fixed threshold of 1,000 changes
  for autovacuum's vacuum and analyze, but autovacuum visits a database at most once a minute
  (`autovacuum_naptime`), so a backlog enqueued in one go is still drained on stale statistics
  for up to a minute; the app role may not ANALYZE a table it does not own (PostgreSQL 17's
  MAINTAIN privilege would allow it). Still open: fetch with a plan that does not depend on the
  statistics (several jobs per query, or a fetch function of our own).
- **Six round trips and two durable commits per job.** Per no-op job now: the library's fetch
  (pool check + fetch, durable commit), our start mark (one pipelined round trip, commit not
  waiting for the WAL), our success mark (the same), the library's finish (pool check + finish,
  durable commit); `pg_stat_database` counts about 6 transactions per job. **Proposals:** turn
  off the library connector pool's per-checkout check (two round trips per job); write the
  success mark in the library's finish transaction (one commit instead of two); a fetch that
  takes several jobs per query.
- **The machine.** Ours spends the worker CPU and PostgreSQL CPU per job shown above, on 2
  cores that other engineers' test suites were also using (see the load averages). PostgreSQL
  CPU counts every process of the cluster, autovacuum included, so it moves between rows.
  Celery's Redis broker does not write to disk per task (this Redis runs with persistence off:
  `appendonly no`, `save ""`), so a crash loses queued tasks that our jobs keep. Even on idle
  cores, 1,000 jobs/s needs the two CPU figures together well under 2 ms per job."""


def _explain_lines(r: dict[str, Any]) -> list[str]:
    ex = r.get("explain")
    if not ex:
        return []
    before, after = ex["after_enqueue"], ex["after_analyze"]
    return [
        "",
        f"Why: `EXPLAIN ANALYZE` of the fetch's candidate query (the SELECT inside"
        f" `procrastinate_fetch_job_v2`) with {ex['jobs']:,} jobs just enqueued:"
        f" {_f(before['ms'], 3)} ms, plan `{before['plan']}` (every queued job read and sorted"
        f" to take one); after `ANALYZE procrastinate_jobs`: {_f(after['ms'], 3)} ms, plan"
        f" `{after['plan']}`. Right after a bulk enqueue the table's statistics do not know the"
        " new jobs, and the planner picks the sort until autovacuum's next analyze; the steps"
        " above replay that window, so their fetch cost follows the queue's size.",
    ]


def steps_markdown(r: dict[str, Any]) -> list[str]:
    lines = [
        "#### Where a job's time goes: a worker's database steps, replayed (bench/jobs/perjob.py)",
        "",
        machine_line(r),
        "",
        "N no-op jobs enqueued, then each job's database conversation played step by step as"
        " the runtime does it, one connection per side, nothing else running in them: the"
        " library's fetch and finish (autocommit, durable commits; in a real worker each also"
        " pays a pool check round trip), and the wrapper's start and success marks"
        " (`SqlJobLedger`: `set_config`, `SET LOCAL synchronous_commit = off`, the UPDATE and"
        " COMMIT pipelined in one round trip). Per job, wall ms / PostgreSQL CPU ms:",
        "",
        "| jobs | fetch (library) | start mark (ours) | success mark (ours) | finish (library) |"
        " jobs/s one after the other | the same mark, durable |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, x in r["sizes"].items():
        pj = x["per_job"]
        cells = " | ".join(
            f"{_f(pj[k]['wall_ms'], 2)} / {_f(pj[k]['pg_cpu_ms'], 2)}"
            for k in ("fetch", "start", "succeed", "finish")
        )
        lines.append(
            f"| {int(n):,} | {cells} | {_f(x['serial_jobs_per_s'], 0)} |"
            f" {_f(x.get('commit_ms'), 2)} ms |"
        )
    lines += [
        *_explain_lines(r),
    ]
    return lines


def markdown(parts: dict[str, dict[str, Any]]) -> str:
    lines = [
        BEGIN,
        "## Background jobs: slow partner, throughput beside Celery (bench/jobs)",
        "",
        "Generated by `bench/jobs/run.py` from bench/jobs/results/*.json; rerun with"
        " `.venv/bin/python bench/jobs/run.py` (see bench/jobs/README.md).",
        "",
    ]
    if "slow" in parts:
        lines += [*slow_markdown(parts["slow"]), *history_lines("slow"), ""]
    if "throughput" in parts:
        t = parts["throughput"]
        lines += [*throughput_markdown(t), *history_lines("throughput"), "", NOTES, ""]
    if "steps" in parts:
        lines += [*steps_markdown(parts["steps"]), ""]
    lines.append(END)
    return "\n".join(lines)


def load_saved() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in PARTS:
        path = RESULTS / f"{part}.json"
        if path.exists():
            out[part] = json.loads(path.read_text())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=PARTS, help="run one part (the others keep their saved run)")
    ap.add_argument("--quick", action="store_true", help="short phases; nothing saved")
    ap.add_argument("--docs-only", action="store_true", help="rewrite the docs from saved runs")
    args = ap.parse_args()
    parts = [args.only] if args.only else list(PARTS)
    command = ".venv/bin/python bench/jobs/run.py" + (f" --only {args.only}" if args.only else "")
    fresh: dict[str, dict[str, Any]] = {}
    if not args.docs_only:
        with stop_on_signals():
            for part in parts:
                info = stamp(command)
                if part == "slow":
                    res = slow_partner.run(slow_partner.QUICK if args.quick else slow_partner.FULL)
                elif part == "steps":
                    res = {"sizes": {str(n): perjob.run(n) for n in STEP_SIZES}}
                    res["explain"] = perjob.explain_fetch(STEP_SIZES[-1])
                else:
                    plan = throughput.QUICK if args.quick else throughput.FULL
                    work = Path(tempfile.mkdtemp(prefix="impextech-bench-celery-"))
                    try:
                        res = throughput.run(plan, work)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)  # the throwaway Celery venv
                    res["perjob"] = perjob.run(2000 if not args.quick else 500)
                    res["procrastinate"] = perjob.library_version()
                res.update(info)
                res["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
                fresh[part] = res
                if not args.quick:
                    RESULTS.mkdir(exist_ok=True)
                    (RESULTS / f"{part}.json").write_text(json.dumps(res, indent=2, default=str))
                    with HISTORY.open("a") as out:
                        out.write(json.dumps(key_figures(part, res)) + "\n")
                    log(f"saved {RESULTS / f'{part}.json'}")
    block = markdown(fresh if args.quick else load_saved())
    print(block)
    if not args.quick:
        write_section(block)
        log("updated docs/benchmarks.md (jobs section)")
    sys.exit(0)


if __name__ == "__main__":
    main()
