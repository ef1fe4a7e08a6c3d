"""RLS overhead (issue 4): GET /api/v1/products with row-level security, and without it.

    .venv/bin/python bench/rls/run.py            # full run (about 2 minutes), updates the docs
    .venv/bin/python bench/rls/run.py --quick    # a smoke run (under a minute), docs untouched

One `impextech demo` (embedded PostgreSQL, migrations, demo data, one uvicorn worker) in a
temporary data directory, 127.0.0.1 only. The same server process, the same connections and the
same rows serve both sides; between slices the schema owner switches row-level security off
(`NO FORCE` + `DISABLE` on every table that has it) and back on, in mirrored order
(on, off, off, on, ...) so a drift in the machine's load weighs on both alike. The application's
own `WHERE tenant_id = ...` stays, so both sides answer the same 20 products (checked) and the
difference is the policy alone. Closed loops use wrk (or bench/api/loadgen.py), CPU per request
is read from /proc; everything stops by itself (also on failure or Ctrl+C) and the directory is
deleted. Reuses bench/api/run.py's machinery.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from impextech.catalog.adapters.sql import build_search
from impextech.catalog.service.ports import ProductQuery

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from api.run import (  # noqa: E402
    BIN,
    CONNECTIONS,
    LIST_PATH,
    TENANT,
    CpuProbe,
    Servers,
    app_env,
    closed_loop,
    combine,
    ensure_wrk,
    free_port,
    http_get,
    log,
    machine,
    postmaster_pid,
    stop_on_signals,
)

ROOT = BENCH.parent
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- rls:begin -->", "<!-- rls:end -->"
GOAL = 0.10  # at most 10 % fewer requests per second with RLS


@dataclass(frozen=True)
class Plan:
    warmup: float
    slice: float
    rounds: int  # mirrored passes (on, off, off, on) per run
    statements: int  # SQL-only phase: transactions per slice


FULL = Plan(warmup=5, slice=8, rounds=3, statements=500)
QUICK = Plan(warmup=2, slice=3, rounds=1, statements=100)
SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


def plan_of(app: str, tenant_id: UUID) -> list[str]:
    """The list statement's plan as the app role sees it (node lines, costs off)."""
    statement, params = build_search(tenant_id, ProductQuery(limit=20))
    with psycopg.connect(app) as conn:
        conn.execute(SET_TENANT, (str(tenant_id),))
        rows = conn.execute(
            sql.SQL("EXPLAIN (COSTS OFF) {}").format(sql.SQL(statement)), params
        ).fetchall()
        conn.rollback()
    return [str(r[0]).strip() for r in rows]


def sql_slice(app: str, tenant_id: UUID, n: int) -> list[float]:
    """Milliseconds per transaction for the list's own statement (``build_search``), run as
    the request path runs it: the app role, tenant set in the transaction, then rolled back."""
    statement, params = build_search(tenant_id, ProductQuery(limit=20))
    out: list[float] = []
    with psycopg.connect(app) as conn:
        for _ in range(n):
            start = time.perf_counter()
            conn.execute(SET_TENANT, (str(tenant_id),))
            rows = conn.execute(statement, params).fetchall()
            conn.rollback()
            out.append((time.perf_counter() - start) * 1000)
            if len(rows) != 21:
                raise RuntimeError(f"the list statement returned {len(rows)} rows, not 21")
    return out


def owner_conninfo(data_dir: Path) -> str:
    return f"host={data_dir / 'pg'} dbname=impextech user=impextech_owner"


def rls_tables(owner: str) -> list[str]:
    with psycopg.connect(owner) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def set_rls(owner: str, tables: list[str], on: bool) -> None:
    """Row-level security on (ENABLE + FORCE, as migrated) or off (DISABLE + NO FORCE)."""
    with psycopg.connect(owner) as conn:
        for table in tables:
            name = sql.Identifier(table)
            if on:
                conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name))
                conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(name))
            else:
                conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(name))
                conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(name))
        states = conn.execute(
            "SELECT bool_and(relrowsecurity = %s AND relforcerowsecurity = %s)"
            " FROM pg_class WHERE relname = ANY(%s)",
            (on, on, tables),
        ).fetchone()
    if states != (True,):
        raise RuntimeError(f"row-level security did not switch {'on' if on else 'off'}")


def app_sees_without_tenant(app: str) -> int:
    """Products the app role sees with no tenant set: 0 with RLS, every row without."""
    with psycopg.connect(app) as conn:
        row = conn.execute("SELECT count(*) FROM products").fetchone()
    return int(row[0]) if row else -1


@contextmanager
def rls_restored(owner: str, tables: list[str]) -> Iterator[None]:
    try:
        yield
    finally:
        set_rls(owner, tables, True)


def list_body(port: int) -> bytes:
    status, body = http_get(port, f"{LIST_PATH}?limit=20", {"X-Tenant": TENANT})
    if status != 200:
        raise RuntimeError(f"the list answered {status}")
    return body


def run(plan: Plan) -> dict[str, Any]:
    wrk = ensure_wrk()
    log(f"closed-loop tool: {wrk or 'loadgen.py (wrk not available)'}")
    results: dict[str, Any] = {"machine": machine(), "plan": plan.__dict__}
    data_dir = Path(tempfile.mkdtemp(prefix="impextech-rls-bench-"))
    data_dir.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
    servers = Servers(data_dir)
    app_log = data_dir / "app.log"
    try:
        port = free_port()
        log(f"starting impextech demo on {port} (data dir {data_dir})")
        argv = [str(BIN / "impextech"), "demo"]
        servers.start("app", argv, app_env(data_dir, port, "warning"), app_log)
        servers.wait_ready("app", port, LIST_PATH, 120, app_log)
        owner = owner_conninfo(data_dir)
        app = f"host={data_dir / 'pg'} dbname=impextech user=impextech_app"
        tables = rls_tables(owner)
        results["tables"] = tables
        with rls_restored(owner, tables):
            with_rls = list_body(port)
            hidden = app_sees_without_tenant(app)
            set_rls(owner, tables, False)
            without_rls = list_body(port)
            shown = app_sees_without_tenant(app)
            set_rls(owner, tables, True)
            if with_rls != without_rls or len(json.loads(with_rls)["items"]) != 20:
                raise RuntimeError("the list differs with and without row-level security")
            if hidden != 0 or shown <= 0:
                raise RuntimeError(f"the switch did not take: {hidden} rows with, {shown} without")
            results["rows_visible_without_tenant"] = {"rls": hidden, "no_rls": shown}
            results["body_bytes"] = len(with_rls)

            postmaster = postmaster_pid(data_dir)
            pid = servers.procs["app"].pid
            log(f"warm-up {plan.warmup:g} s")
            closed_loop(wrk, port, LIST_PATH, plan.warmup, CONNECTIONS)
            runs: dict[str, list[dict[str, Any]]] = {"rls": [], "no_rls": []}
            for side in ["rls", "no_rls", "no_rls", "rls"] * plan.rounds:
                set_rls(owner, tables, side == "rls")
                log(f"{side}: closed loop {plan.slice:g} s, {CONNECTIONS} conns")
                probe = CpuProbe(pid, postmaster)
                runs[side].append(
                    closed_loop(wrk, port, LIST_PATH, plan.slice, CONNECTIONS, cpu=probe)
                )
                log(f"{side}: {runs[side][-1]['throughput_rps']:.0f} rps")
            with psycopg.connect(app) as conn:
                found = conn.execute("SELECT id FROM tenants WHERE slug = %s", (TENANT,)).fetchone()
            assert found is not None
            results["plan_rls"] = plan_of(app, found[0])
            set_rls(owner, tables, False)
            results["plan_no_rls"] = plan_of(app, found[0])
            timings: dict[str, list[float]] = {"rls": [], "no_rls": []}
            sql_slice(app, found[0], plan.statements)  # warm-up
            for side in ["rls", "no_rls", "no_rls", "rls"] * plan.rounds:
                set_rls(owner, tables, side == "rls")
                log(f"{side}: {plan.statements} list statements on one connection")
                timings[side] += sql_slice(app, found[0], plan.statements)
        for side, parts in runs.items():
            results[side] = combine(parts)
        for side, samples in timings.items():
            results[f"sql_{side}"] = {
                "n": len(samples),
                "median_ms": statistics.median(samples),
                "p90_ms": statistics.quantiles(samples, n=10)[-1],
            }
        results["tool_closed"] = "wrk 4.1 (-t1)" if wrk else "loadgen.py closed mode"
        results["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        return results
    finally:
        log("stopping the server and the embedded cluster")
        servers.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def _cpu(x: dict[str, Any]) -> float:
    return float(x.get("server_cpu_ms_per_req", 0.0)) + float(x.get("pg_cpu_ms_per_req", 0.0))


def table(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    on, off = r["rls"], r["no_rls"]
    overhead = 1 - on["throughput_rps"] / off["throughput_rps"]
    cpu_overhead = _cpu(on) / _cpu(off) - 1 if _cpu(off) else float("nan")
    sql_on, sql_off = r["sql_rls"], r["sql_no_rls"]
    sql_overhead = sql_on["median_ms"] / sql_off["median_ms"] - 1
    slices = ", ".join(f"{p['throughput_rps']:.0f}" for p in on["runs"])
    off_slices = ", ".join(f"{p['throughput_rps']:.0f}" for p in off["runs"])

    def side(x: dict[str, Any], each: str) -> str:
        return (
            f"{x['throughput_rps']:.0f} rps (slices {each}; p50 {x['p50_ms']:.1f} ms,"
            f" p99 {x['p99_ms']:.1f} ms, non-2xx {x['non_2xx']}); CPU/request: server"
            f" {x.get('server_cpu_ms_per_req', float('nan')):.2f} ms, PostgreSQL"
            f" {x.get('pg_cpu_ms_per_req', float('nan')):.2f} ms"
        )

    return [
        (f"RLS on (as migrated), closed loop, {CONNECTIONS} conns", side(on, slices), "", ""),
        ("RLS off (DISABLE + NO FORCE), same loop", side(off, off_slices), "", ""),
        ("throughput lost to RLS", f"{100 * overhead:.1f} %", f"<= {100 * GOAL:.0f} %",
         "met" if overhead <= GOAL else "**missed**"),
        ("CPU per request added by RLS (server + PostgreSQL)", f"{100 * cpu_overhead:.1f} %",
         "", ""),
        ("SQL only: the list's statement in its transaction, one connection, RLS on",
         f"median {sql_on['median_ms']:.3f} ms, p90 {sql_on['p90_ms']:.3f} ms"
         f" ({sql_on['n']} transactions)", "", ""),
        ("SQL only, RLS off",
         f"median {sql_off['median_ms']:.3f} ms, p90 {sql_off['p90_ms']:.3f} ms"
         f" ({sql_off['n']} transactions)", "", ""),
        ("SQL only: time added by RLS (medians)", f"{100 * sql_overhead:.1f} %", "", ""),
    ]  # fmt: skip


def markdown(r: dict[str, Any], command: str, when: str) -> str:
    m, plan = r["machine"], r["plan"]
    lines = [
        BEGIN,
        "## Tenancy: row-level security overhead on the product list (bench/rls)",
        "",
        f"Measured {when} with `{command}` on {m['cpus']} cores ({m['cpu']}), {m['memory']},"
        f" Linux {m['kernel']}, Python {m['python']}, commit {m['commit']}; load average"
        f" {m['load']} at the start and {r.get('load_end', '?')} at the end (other jobs shared"
        f" the machine). One `impextech demo` process (one uvicorn worker, embedded PostgreSQL,"
        f" demo data, access log off) serves `GET {LIST_PATH}` with `X-Tenant: {TENANT}`"
        f" ({r['body_bytes']} bytes, 20 products) to {r['tool_closed']}; between slices the"
        f" schema owner turns row-level security off (`DISABLE` + `NO FORCE` on"
        f" {', '.join(r['tables'])}) and back on. Same process, same pool, same rows; the"
        f" application's own tenant filter stays, so both sides return the same bytes (checked),"
        f" and the switch is checked too (the app role sees"
        f" {r['rows_visible_without_tenant']['rls']} products with no tenant set under RLS,"
        f" {r['rows_visible_without_tenant']['no_rls']} without). {plan['slice']:g} s slices,"
        f" {4 * plan['rounds']} of them in mirrored order (on, off, off, on) after a"
        f" {plan['warmup']:g} s warm-up. The SQL-only rows run the list's own statement"
        f" (`build_search`) as the app role on one connection, {plan['statements']} transactions"
        f" per slice in the same mirrored order: less exposed to the machine's other jobs than"
        f" 64 HTTP connections on 2 shared cores. The statement's plan with RLS:"
        f" `{' / '.join(r['plan_rls'])}`; without: `{' / '.join(r['plan_no_rls'])}`.",
        "",
        "| measurement | result | goal | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table(r)]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(block: str) -> None:
    text = DOCS.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short slices; docs left untouched")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    command = ".venv/bin/python bench/rls/run.py" + (" --quick" if args.quick else "")
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    with stop_on_signals():
        results = run(plan)
    rows = table(results)
    width = max(len(a) for a, *_ in rows)
    print()
    for a, b, c, d in rows:
        print(f"{a:<{width}}  {b}  {c}  {d.replace('*', '')}".rstrip())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if not (args.quick or args.no_docs):
        write_docs(markdown(results, command, when))
        print(f"\nupdated {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
