"""Slow partner: product creation while the ERP takes 8 s, inline call vs queued push.

    .venv/bin/python bench/jobs/slow_partner.py [--quick] [--json out.json]

Usually run through bench/jobs/run.py, which also writes docs/benchmarks.md.

One run, one machine, one embedded PostgreSQL, one `impextech sandbox erp --latency 8`:

1. **queued** (the real thing): ``POST /api/v1/products`` on bench/jobs/slow_server.py (the app
   exactly as `impextech serve` builds it: one uvicorn process, pool of IMPEXTECH_DB_POOL_SIZE
   connections). Each create commits the product and its ``catalog.erp_push`` job in one
   transaction; ``impextech worker`` processes (queue ``urgent``) push to the ERP. After the load,
   the jobs are counted, then drained (bounded in time) and counted again.
2. **inline** (the baseline, kept only in the benchmark): ``POST /bench/products-inline`` on the
   same server program with the same settings, in a fresh process: the same create, then the ERP
   call inside the request (httpx, the gateway's timeouts and connection limit; see
   slow_server.py). No worker runs, so its queued pushes stay queued and do not touch the ERP.

Both: a steady RATE creations per second for DURATION seconds, open loop (bench/jobs/openloop.py,
bench/api/loadgen.py's machinery; latency from the scheduled send time), each request with its
own SKU, as the tenant's admin. The ERP timeout is IMPEXTECH_ERP_TIMEOUT=10 for both, so a call
that gets a connection is answered (8 s) instead of timing out; the default 5 s would fail every
call and open the breaker.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from jobbench import ADMIN_PASSWORD, BIN, HERE, HOST, Cluster, cluster, free_port, log

ERP_LATENCY = 8.0
ERP_TIMEOUT = 10.0
WORKER_SLOTS = 50  # per process; the ERP gateway holds at most 50 connections per process
ADMIN = "admin@bench.example"
WARMUP_SECONDS = 2.0


@dataclass(frozen=True)
class Plan:
    rate: float
    duration: float
    workers: int  # `impextech worker` processes in the queued phase
    drain_timeout: float
    grace: float  # how long the generator waits for answers after the last request is due


FULL = Plan(rate=50, duration=30, workers=3, drain_timeout=180, grace=30)
QUICK = Plan(rate=50, duration=5, workers=2, drain_timeout=60, grace=20)


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (127.0.0.1 only)
            raw = resp.read()
            return int(resp.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited:\n{log_file.read_text()[-2000:]}")
        if http_json("GET", url)[0] == 200:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not answering after {timeout:.0f} s")


def login(port: int, slug: str) -> str:
    status, answer = http_json(
        "POST",
        f"http://{HOST}:{port}/api/v1/auth/login",
        {"email": ADMIN, "password": ADMIN_PASSWORD},
        {"X-Tenant": slug},
    )
    if status != 200:
        raise RuntimeError(f"login as {ADMIN} in {slug} answered {status}")
    token: str = answer["access_token"]
    return token


def start_server(c: Cluster, name: str, env: dict[str, str]) -> int:
    port = free_port()
    argv = [sys.executable, str(HERE / "slow_server.py"), "--port", str(port)]
    log_file = c.data_dir / f"{name}.log"
    c.servers.start(name, argv, env, log_file)
    wait_http(f"http://{HOST}:{port}/healthz", 60, c.servers.procs[name], log_file)
    return port


def warm_up(port: int, path: str, token: str, prefix: str, plan: Plan, rate: float) -> int:
    """A short open loop first (fresh pool connections, first-call paths); its 2xx count."""
    short = Plan(**{**asdict(plan), "rate": rate, "duration": WARMUP_SECONDS})
    load = open_loop(port, path, token, prefix, short)
    time.sleep(2)
    return int(load["ok_2xx"])


def open_loop(port: int, path: str, token: str, prefix: str, plan: Plan) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / "openloop.py"), "--port", str(port), "--path", path]
    argv += ["--header", f"Authorization: Bearer {token}", "--sku-prefix", prefix]
    argv += ["--rate", f"{plan.rate:g}", "--duration", f"{plan.duration:g}"]
    argv += ["--grace", f"{plan.grace:g}", "--connections", "1200"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=plan.duration + plan.grace + 120, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def push_counts(c: Cluster, tenant_id: UUID, prefix: str) -> dict[str, int]:
    """ERP push jobs by state, for the products whose SKU starts with ``prefix-``."""
    rows = c.tenant_query(
        tenant_id,
        "SELECT j.state, count(*) FROM jobs j JOIN products p"
        " ON p.id = (j.payload->>'product_id')::uuid AND p.sku LIKE %s"
        " WHERE j.kind = 'catalog.erp_push' GROUP BY j.state",
        (f"{prefix}-%",),
    )
    return {str(state): int(n) for state, n in rows}


def push_errors(c: Cluster, tenant_id: UUID) -> dict[str, int]:
    """Last errors of pushes that failed at least once (breaker, timeouts, pool waits)."""
    rows = c.tenant_query(
        tenant_id,
        "SELECT left(last_error, 80), count(*) FROM jobs WHERE kind = 'catalog.erp_push'"
        " AND last_error IS NOT NULL GROUP BY 1",
    )
    return {str(err): int(n) for err, n in rows}


def erp_stats(erp: str) -> dict[str, Any]:
    status, stats = http_json("GET", f"{erp}/_stats")
    return stats if status == 200 and isinstance(stats, dict) else {}


def queued_phase(c: Cluster, plan: Plan, env: dict[str, str], erp: str) -> dict[str, Any]:
    tenant_id = c.create_tenant("queued", admin_email=ADMIN)
    slug = f"queued{c.tenants}"
    port = start_server(c, "server-queued", env)
    worker_env = {**env, "IMPEXTECH_WORKER_QUEUES": f"urgent:{WORKER_SLOTS}"}
    for i in range(plan.workers):
        name = f"worker-{i}"
        c.servers.start(name, [str(BIN / "impextech"), "worker"], worker_env,
                        c.data_dir / f"{name}.log")  # fmt: skip
    deadline = time.monotonic() + 60
    while c.owner_query("SELECT count(*) FROM procrastinate_workers")[0][0] < plan.workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not register within 60 s")
        time.sleep(0.2)
    token = login(port, slug)
    warm = warm_up(port, "/api/v1/products", token, "WQ", plan, plan.rate)
    deadline = time.monotonic() + 60  # the warm-up's pushes out of the way, ERP counters afresh
    while push_counts(c, tenant_id, "WQ").get("succeeded", 0) < warm:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up's ERP pushes did not finish within 60 s")
        time.sleep(0.5)
    http_json("POST", f"{erp}/_reset")
    log(f"queued: POST /api/v1/products, {plan.rate:g}/s for {plan.duration:g} s")
    load = open_loop(port, "/api/v1/products", token, "Q", plan)
    at_end = push_counts(c, tenant_id, "Q")
    erp_at_end = erp_stats(erp)
    log(f"queued: p99 {load['p99_ms']:.1f} ms; pushes at the end of the load: {at_end}")
    began = time.monotonic()
    created = load["statuses"].get("201", 0)
    drained = False
    while time.monotonic() - began < plan.drain_timeout:
        if push_counts(c, tenant_id, "Q").get("succeeded", 0) >= created:
            drained = True
            break
        time.sleep(1)
    drain_s = time.monotonic() - began
    after = push_counts(c, tenant_id, "Q")
    log(f"queued: after {drain_s:.0f} s of drain: {after}")
    result = {
        "load": load, "pushes_at_end": at_end, "erp_at_end": erp_at_end,
        "drained": drained, "drain_s": drain_s, "pushes_after_drain": after,
        "erp_after_drain": erp_stats(erp), "push_errors": push_errors(c, tenant_id),
        "products": c.tenant_query(
            tenant_id, "SELECT count(*) FROM products WHERE sku LIKE %s", ("Q-%",)
        )[0][0],
    }  # fmt: skip
    for i in range(plan.workers):
        c.servers.stop(f"worker-{i}")
    c.servers.stop("server-queued")
    return result


def inline_phase(c: Cluster, plan: Plan, env: dict[str, str], erp: str) -> dict[str, Any]:
    tenant_id = c.create_tenant("inline", admin_email=ADMIN)
    slug = f"inline{c.tenants}"
    port = start_server(c, "server-inline", env)
    token = login(port, slug)
    # A few calls first (the ERP connections open), then the ERP counters start afresh.
    warm_up(port, "/bench/products-inline", token, "WI", plan, 5)
    http_json("POST", f"{erp}/_reset")
    _, before = http_json("GET", f"http://{HOST}:{port}/bench/stats")
    log(f"inline: POST /bench/products-inline, {plan.rate:g}/s for {plan.duration:g} s")
    load = open_loop(port, "/bench/products-inline", token, "I", plan)
    status, outcomes = http_json("GET", f"http://{HOST}:{port}/bench/stats")
    if status == 200 and isinstance(before, dict):  # the measured load's calls only
        outcomes = {k: v - before.get(k, 0) for k, v in outcomes.items() if v - before.get(k, 0)}
    log(f"inline: p99 {load['p99_ms']:.1f} ms; statuses {load['statuses']}; ERP calls {outcomes}")
    result = {
        "load": load, "erp_calls": outcomes if status == 200 else {},
        "erp": erp_stats(erp),
        "products": c.tenant_query(
            tenant_id, "SELECT count(*) FROM products WHERE sku LIKE %s", ("I-%",)
        )[0][0],
    }  # fmt: skip
    c.servers.stop("server-inline")
    return result


def idle_phase(c: Cluster, plan: Plan, env: dict[str, str]) -> dict[str, Any]:
    """The real endpoint again with no worker running: what the workers' share of the 2 cores
    costs the request path (its pushes stay queued)."""
    tenant_id = c.create_tenant("noworker", admin_email=ADMIN)
    slug = f"noworker{c.tenants}"
    port = start_server(c, "server-noworker", env)
    token = login(port, slug)
    warm_up(port, "/api/v1/products", token, "WN", plan, plan.rate)
    log(f"no worker: POST /api/v1/products, {plan.rate:g}/s for {plan.duration:g} s")
    load = open_loop(port, "/api/v1/products", token, "N", plan)
    log(f"no worker: p99 {load['p99_ms']:.1f} ms; statuses {load['statuses']}")
    result = {"load": load, "pushes_at_end": push_counts(c, tenant_id, "N")}
    c.servers.stop("server-noworker")
    return result


def run(plan: Plan) -> dict[str, Any]:
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "erp_latency_s": ERP_LATENCY,
        "erp_timeout_s": ERP_TIMEOUT,
        "worker_slots": WORKER_SLOTS,
    }
    with cluster() as c:
        erp_port = free_port()
        erp = f"http://{HOST}:{erp_port}"
        erp_log = c.data_dir / "erp.log"
        argv = [str(BIN / "impextech"), "sandbox", "erp", "--port", str(erp_port)]
        argv += ["--latency", f"{ERP_LATENCY:g}", "--seed", "1"]
        c.servers.start("erp", argv, c.env(), erp_log)
        wait_http(f"{erp}/healthz", 30, c.servers.procs["erp"], erp_log)
        env = c.env(IMPEXTECH_ERP_URL=erp, IMPEXTECH_ERP_TIMEOUT=f"{ERP_TIMEOUT:g}")
        results["pool_size"] = c.settings().platform.db_pool_size
        # The queued phase first: the inline phase's creates also queue pushes, which must not
        # reach the ERP through the queued phase's workers.
        results["queued"] = queued_phase(c, plan, env, erp)
        results["inline"] = inline_phase(c, plan, env, erp)
        results["no_worker"] = idle_phase(c, plan, env)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 s of load instead of 30 s")
    ap.add_argument("--json", type=Path, help="write the raw results here")
    args = ap.parse_args()
    results = run(QUICK if args.quick else FULL)
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text + "\n")
    if math.isnan(results["queued"]["load"]["p99_ms"]):
        raise SystemExit("no answers at all in the queued phase")


if __name__ == "__main__":
    main()
