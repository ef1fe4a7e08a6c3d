"""The API benchmark (issue 2): product list vs a bare ceiling, open-loop latency, login vs argon2.

    .venv/bin/python bench/api/run.py            # full run (about 4 minutes), updates the docs
    .venv/bin/python bench/api/run.py --quick    # a smoke run (about 1 minute), docs untouched

Everything runs on this machine against 127.0.0.1 and stops by itself: the script starts
`impextech demo` (embedded PostgreSQL, migrations, demo data, one uvicorn worker) in a temporary
data directory and the ceiling app from bench/api/ceiling.py, measures, then stops both servers
and the embedded cluster (also on failure or Ctrl+C) and deletes the directory.

Load generators: wrk (Debian package, installed with apt-get when missing and running as root)
for the closed loops; bench/api/loadgen.py (uvloop + httptools, constant arrival rate, latency
from the scheduled send time) for the open loops, because wrk has no constant-rate mode and
neither wrk2 nor vegeta is packaged for this Debian.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impextech.identity.adapters.argon2_hasher import owasp_argon2
from impextech.platform.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TENANT = "acme"
LIST_PATH = "/api/v1/products"
LOGIN_PATH = "/api/v1/auth/login"
LOGIN_EMAIL = "shopper@acme.example"
LOGIN_PASSWORD = "impextech-demo-2026"  # noqa: S105  (the documented demo login)
CONNECTIONS = 64
LOGIN_CONNECTIONS = 8
BEGIN, END = "<!-- api-bench:begin -->", "<!-- api-bench:end -->"
VET_BEGIN = "<!-- vet:begin -->"


@dataclass(frozen=True)
class Plan:
    warmup: float
    closed: float
    open: float
    hashing: float
    login: float
    probe: float
    probe_rate: float
    access_log_run: bool
    whatif: bool
    rounds: int  # mirrored passes (A B … B A) per comparison; each slice lasts total / (2 rounds)


FULL = Plan(warmup=5, closed=20, open=20, hashing=10, login=20, probe=15, probe_rate=50,
            access_log_run=True, whatif=True, rounds=2)  # fmt: skip
QUICK = Plan(warmup=2, closed=6, open=5, hashing=3, login=5, probe=5, probe_rate=50,
             access_log_run=False, whatif=False, rounds=1)  # fmt: skip
# bench/api/whatif.py variants measured beside the app (suggested fixes, not in src/)
LIST_WHATIFS = ("cached-reflection",)  # measured in the product-list closed loop
LOGIN_WHATIFS: tuple[str, ...] = ()  # measured in the login block
WHATIFS = LIST_WHATIFS + LOGIN_WHATIFS


def log(msg: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return int(resp.status), bytes(resp.read())
    except OSError:
        return 0, b""


# --- processes ------------------------------------------------------------------------------


class Servers:
    """Every process this run starts, each in its own session so it can be stopped as a group."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], log_file: Path) -> None:
        with log_file.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, name: str, port: int, path: str, timeout: float, log_file: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                tail = log_file.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited early:\n{tail}")
            if http_get(port, path, {"X-Tenant": TENANT})[0] == 200:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready on port {port} after {timeout:.0f} s")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_postgres(self) -> None:
        """The embedded postmaster detaches from the app; stop it by the pid it wrote."""
        pid = postmaster_pid(self.data_dir)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        self.stop_postgres()


def app_env(data_dir: Path, port: int, log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPEXTECH_", "DATABASE_"))}
    env.update(
        IMPEXTECH_DATA_DIR=str(data_dir),
        IMPEXTECH_PORT=str(port),
        IMPEXTECH_HOST=HOST,
        IMPEXTECH_LOG_LEVEL=log_level,
        IMPEXTECH_LOG_FORMAT="json",
        IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT="1000000/900",
        IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS="1000000/900",
        IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE="1000000/900",
        IMPEXTECH_SIGN_IN_BACKOFF_AFTER="1000",
        IMPEXTECH_SIGN_UPS_PER_ADDRESS="1000000/3600",
        IMPEXTECH_PASSWORD_CHANGE_FAILURES="1000000/900",  # noqa: S106 (a rate, not a password)
    )
    return env


# --- CPU accounting -------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


class CpuProbe:
    """CPU seconds used by one server process and by the embedded PostgreSQL (all backends).

    The machine's load from other jobs changes throughput, not the CPU a request costs, so
    CPU per request is the steadier figure to compare the app with the ceiling.
    """

    def __init__(self, server_pid: int, postmaster_pid: int | None) -> None:
        self.server_pid = server_pid
        self.postmaster_pid = postmaster_pid

    def sample(self) -> tuple[float, float]:
        try:
            server = _stat(self.server_pid)[1]
        except OSError:
            server = math.nan
        pg = 0.0
        if self.postmaster_pid is not None:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    ppid, cpu = _stat(int(entry.name))
                except (OSError, ValueError, IndexError):
                    continue
                if int(entry.name) == self.postmaster_pid or ppid == self.postmaster_pid:
                    pg += cpu
        return server, pg


# --- load generators ------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
    return shutil.which("wrk")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else math.nan


def parse_wrk(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": text}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["answered"] = int(m.group(1))
        out["elapsed_s"] = _ms(m.group(2) + m.group(3)) / 1000
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["throughput_rps"] = float(m.group(1)) if m else math.nan
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        out[f"p{pct}_ms"] = _ms(m.group(1)) if m else math.nan
    return out


def closed_loop(
    wrk: str | None, port: int, path: str, duration: float, connections: int,
    script: Path | None = None, cpu: CpuProbe | None = None,
) -> dict[str, Any]:  # fmt: skip
    before = cpu.sample() if cpu else None
    result = _closed_loop(wrk, port, path, duration, connections, script)
    if cpu is not None and before is not None:
        after = cpu.sample()
        result["server_cpu_s"] = after[0] - before[0]
        result["pg_cpu_s"] = after[1] - before[1]
    return result


def _closed_loop(
    wrk: str | None, port: int, path: str, duration: float, connections: int,
    script: Path | None,
) -> dict[str, Any]:  # fmt: skip
    url = f"http://{HOST}:{port}{path}"
    if wrk is not None:
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "10s",
        ]
        argv += ["-H", f"X-Tenant: {TENANT}"]
        if script is not None:
            argv += ["-s", str(script)]
        done = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=duration + 60, check=True
        )
        result = parse_wrk(done.stdout)
        result["tool"] = "wrk"
        return result
    # Fallback: the Python generator in closed mode (costs the server more CPU than wrk).
    argv = [sys.executable, str(HERE / "loadgen.py"), "--mode", "closed", "--port", str(port)]
    argv += ["--path", path, "--duration", f"{duration:g}", "--connections", str(connections)]
    argv += ["--header", f"X-Tenant: {TENANT}"]
    if script is not None:
        argv += ["--method", "POST", "--header", "Content-Type: application/json"]
        argv += ["--body", login_body()]
    result = _loadgen(argv, duration)
    result["tool"] = "loadgen.py (closed)"
    result["non_2xx"] = result["answered"] - result["ok_2xx"]
    result["socket_errors"] = sum(result["errors"].values())
    return result


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several closed-loop runs as one: total answers over total time; worst percentiles."""
    answered = sum(p.get("answered", 0) for p in parts)
    elapsed = sum(p.get("elapsed_s", 0.0) for p in parts)
    out: dict[str, Any] = {
        "runs": parts,
        "answered": answered,
        "elapsed_s": elapsed,
        "throughput_rps": answered / elapsed if elapsed else math.nan,
        "non_2xx": sum(p["non_2xx"] for p in parts),
        "socket_errors": sum(p["socket_errors"] for p in parts),
    }
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        out[key] = max(p[key] for p in parts)
    add_cpu_per_request(out, parts)
    return out


def add_cpu_per_request(out: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    answered = sum(p.get("answered", 0) for p in parts)
    for key in ("server_cpu_s", "pg_cpu_s"):
        if answered and all(key in p for p in parts):
            out[key.replace("_cpu_s", "_cpu_ms_per_req")] = (
                sum(p[key] for p in parts) * 1000 / answered
            )


def open_loop(port: int, rate: float, duration: float, connections: int) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / "loadgen.py"), "--mode", "open", "--port", str(port)]
    argv += ["--path", LIST_PATH, "--header", f"X-Tenant: {TENANT}", "--rate", f"{rate:g}"]
    argv += ["--duration", f"{duration:g}", "--connections", str(connections), "--grace", "10"]
    return _loadgen(argv, duration)


def _loadgen(argv: list[str], duration: float) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def login_body() -> str:
    return json.dumps({"email": LOGIN_EMAIL, "password": LOGIN_PASSWORD})


def login_script(directory: Path) -> Path:
    path = directory / "login.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{login_body()}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


# --- raw argon2 -----------------------------------------------------------------------------


def raw_hash_rate(seconds: float, threads: int) -> tuple[float, float]:
    """argon2id verifications per second with OWASP parameters, on ``threads`` threads, and
    the CPU milliseconds each one costs.

    A login verifies (the same cost as hashing), so that is what is measured.
    """
    argon = owasp_argon2()
    encoded = argon.hash(LOGIN_PASSWORD)
    counts = [0] * threads
    cpu_start = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds

    def work(i: int) -> None:
        while time.perf_counter() < deadline:
            argon.verify(encoded, LOGIN_PASSWORD)
            counts[i] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return sum(counts) / elapsed, cpu * 1000 / max(1, sum(counts))


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- the run --------------------------------------------------------------------------------


def check_parity(app_port: int, ceiling_port: int) -> int:
    """Both servers answer the same 20 products in the same order."""
    headers = {"X-Tenant": TENANT}
    a_status, a_body = http_get(app_port, LIST_PATH, headers)
    c_status, c_body = http_get(ceiling_port, LIST_PATH, headers)
    if a_status != 200 or c_status != 200:
        raise RuntimeError(f"list answered {a_status} (app) and {c_status} (ceiling)")
    a_ids = [i["id"] for i in json.loads(a_body)["items"]]
    c_ids = [i["id"] for i in json.loads(c_body)["items"]]
    if a_ids != c_ids or len(a_ids) != 20:
        raise RuntimeError("the app and the ceiling answer different product lists")
    if not json.loads(a_body)["next_cursor"] or not json.loads(c_body)["next_cursor"]:
        raise RuntimeError("expected a next-page cursor from both")
    return len(a_body)


def check_login(port: int) -> None:
    req = urllib.request.Request(
        f"http://{HOST}:{port}{LOGIN_PATH}",
        data=login_body().encode(),
        headers={"Content-Type": "application/json", "X-Tenant": TENANT},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        if resp.status != 200 or "access_token" not in json.loads(resp.read()):
            raise RuntimeError(f"demo login answered {resp.status}")


def machine() -> dict[str, str]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB"

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    # vet has nothing to do with the API: its work in progress does not make this run "dirty".
    changed = git("status", "--porcelain", "src", ":(exclude)src/impextech/vet")
    dirty = " with uncommitted changes in src/" if changed else ""
    return {
        "commit": (git("rev-parse", "--short", "HEAD") or "unknown") + dirty,
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(plan: Plan) -> dict[str, Any]:
    wrk = ensure_wrk()
    log(f"closed-loop tool: {wrk or 'loadgen.py (wrk not available)'}")
    results: dict[str, Any] = {"machine": machine(), "plan": plan.__dict__}
    data_dir = Path(tempfile.mkdtemp(prefix="impextech-bench-"))
    data_dir.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
    servers = Servers(data_dir)
    app_log, ceiling_log = data_dir / "app.log", data_dir / "ceiling.log"
    try:
        app_port, ceiling_port = free_port(), free_port()
        log(f"starting impextech demo on {app_port} (data dir {data_dir})")
        app_argv = [str(BIN / "impextech"), "demo"]
        servers.start("app", app_argv, app_env(data_dir, app_port, "warning"), app_log)
        servers.wait_ready("app", app_port, LIST_PATH, 120, app_log)
        conninfo = f"host={data_dir / 'pg'} dbname=impextech user=impextech_app"
        ceiling_argv = [sys.executable, str(HERE / "ceiling.py"), "--conninfo", conninfo]
        # The ceiling gets as many connections as the app's pool may hold (the same setting).
        pool_size = Settings.from_env(app_env(data_dir, app_port, "warning")).platform.db_pool_size
        results["pool_size"] = pool_size
        ceiling_argv += ["--port", str(ceiling_port), "--pool-size", str(pool_size)]
        ceiling_argv += ["--secret-file", str(data_dir / "secret-key")]
        servers.start("ceiling", ceiling_argv, dict(os.environ), ceiling_log)
        servers.wait_ready("ceiling", ceiling_port, LIST_PATH, 60, ceiling_log)
        results["body_bytes"] = check_parity(app_port, ceiling_port)

        postmaster = postmaster_pid(data_dir)
        targets = {"ceiling": ceiling_port, "app": app_port}
        pids = {"ceiling": servers.procs["ceiling"].pid, "app": servers.procs["app"].pid}
        if plan.access_log_run:
            # A second app process on the same database with the access log on, measured in the
            # same interleaved passes as the first (its log goes to a file).
            logged_port = free_port()
            logged_argv = [str(BIN / "impextech"), "serve"]
            logged_env = app_env(data_dir, logged_port, "info")
            servers.start("app-logged", logged_argv, logged_env, data_dir / "app-logged.log")
            servers.wait_ready(
                "app-logged", logged_port, LIST_PATH, 60, data_dir / "app-logged.log"
            )
            targets["app-logged"] = logged_port
            pids["app-logged"] = servers.procs["app-logged"].pid
        variant_ports: dict[str, int] = {}
        for variant in WHATIFS if plan.whatif else ():
            fix_port = free_port()
            fix_argv = [sys.executable, str(HERE / "whatif.py"), "--variant", variant]
            fix_argv += ["--workdir", str(data_dir)]
            fix_log = data_dir / f"whatif-{variant}.log"
            servers.start(variant, fix_argv, app_env(data_dir, fix_port, "warning"), fix_log)
            try:
                servers.wait_ready(variant, fix_port, LIST_PATH, 60, fix_log)
            except RuntimeError as exc:
                # A variant that no longer applies (src/ moved on) is skipped, not fatal.
                log(f"what-if {variant} skipped: {str(exc).strip().splitlines()[-1]}")
                results.setdefault("whatif_skipped", {})[variant] = str(exc)[-500:]
                servers.stop(variant)
                continue
            variant_ports[variant] = fix_port
            pids[variant] = servers.procs[variant].pid
            if variant in LIST_WHATIFS:
                targets[variant] = fix_port
        for name, port in targets.items():
            log(f"{name}: warm-up {plan.warmup:g} s")
            closed_loop(wrk, port, LIST_PATH, plan.warmup, CONNECTIONS)
        # Slices in mirrored order (ceiling, app, …, …, app, ceiling), repeated `rounds` times,
        # so a drift in the machine's background load weighs on every side alike.
        order = list(targets)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
        slice_s = plan.closed / (2 * plan.rounds)
        for name in (order + order[::-1]) * plan.rounds:
            log(f"{name}: closed loop {slice_s:g} s, {CONNECTIONS} conns")
            probe = CpuProbe(pids[name], postmaster)
            runs[name].append(
                closed_loop(wrk, targets[name], LIST_PATH, slice_s, CONNECTIONS, cpu=probe)
            )
            log(f"{name}: {runs[name][-1]['throughput_rps']:.0f} rps")
        for name, parts in runs.items():
            results[f"{name}_closed"] = combine(parts)
        for name in targets:
            if name not in ("app", "ceiling") and name not in LOGIN_WHATIFS:
                servers.stop(name)

        rate = round(results["ceiling_closed"]["throughput_rps"] / 2)
        log(f"app: open loop at {rate} rps for {plan.open:g} s")
        results["app_open"] = open_loop(app_port, rate, plan.open, CONNECTIONS)
        # The same schedule against the ceiling: what this machine allows at that rate.
        log(f"ceiling: open loop at {rate} rps for {plan.open:g} s")
        results["ceiling_open"] = open_loop(ceiling_port, rate, plan.open, CONNECTIONS)
        servers.stop("ceiling")

        threads = os.cpu_count() or 1
        results["hash_threads"] = threads
        script = login_script(data_dir)
        # Raw hashing and logins alternate in mirrored slices (raw, app, …, …, app, raw), for the
        # same reason as above; the raw rate is the mean of its slices.
        hashes: list[tuple[float, float]] = []
        login_ports = {"app": app_port}
        login_ports.update((v, p) for v, p in variant_ports.items() if v in LOGIN_WHATIFS)
        for name, port in login_ports.items():
            check_login(port)
            log(f"login ({name}): warm-up {plan.warmup:g} s")
            closed_loop(wrk, port, LOGIN_PATH, plan.warmup, LOGIN_CONNECTIONS, script)
        logins: dict[str, list[dict[str, Any]]] = {name: [] for name in login_ports}
        hash_slice, login_slice = plan.hashing / (2 * plan.rounds), plan.login / (2 * plan.rounds)
        steps = ["raw", *login_ports]
        for step in (steps + steps[::-1]) * plan.rounds:
            if step == "raw":
                log(f"raw argon2id: {threads} threads for {hash_slice:g} s")
                hashes.append(raw_hash_rate(hash_slice, threads))
            else:
                log(f"login ({step}): closed loop {login_slice:g} s at {LOGIN_CONNECTIONS} conns")
                logins[step].append(
                    closed_loop(
                        wrk, login_ports[step], LOGIN_PATH, login_slice, LOGIN_CONNECTIONS, script,
                        cpu=CpuProbe(pids[step], postmaster),
                    )
                )  # fmt: skip
        results["login"] = combine(logins.pop("app"))
        for variant, parts in logins.items():
            results[f"{variant}_login"] = combine(parts)
            servers.stop(variant)
        results["hash_rates"] = [rate for rate, _ in hashes]
        # The median: one slice that catches the machine's other jobs idle must not set the bar.
        results["hash_rate"] = statistics.median(rate for rate, _ in hashes)
        results["hash_cpu_ms"] = sum(cpu for _, cpu in hashes) / len(hashes)

        log(f"list p99 at {plan.probe_rate:g} rps: idle")
        results["probe_idle"] = open_loop(app_port, plan.probe_rate, plan.probe, 16)
        log("list p99 during a login flood")
        flood: dict[str, Any] = {}
        flood_thread = threading.Thread(
            target=lambda: flood.update(
                closed_loop(wrk, app_port, LOGIN_PATH, plan.probe + 4, LOGIN_CONNECTIONS, script)
            )
        )
        flood_thread.start()
        time.sleep(2)
        results["probe_flood"] = open_loop(app_port, plan.probe_rate, plan.probe, 16)
        flood_thread.join(plan.probe + 120)
        results["flood_login"] = flood

        results["tool_closed"] = "wrk 4.1 (-t1)" if wrk else "loadgen.py closed mode"
        results["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        return results
    finally:
        log("stopping servers and the embedded cluster")
        servers.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


# --- report ---------------------------------------------------------------------------------


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _cpu(x: dict[str, Any]) -> str:
    server, pg = x.get("server_cpu_ms_per_req"), x.get("pg_cpu_ms_per_req")
    if server is None or pg is None:
        return ""
    return f"; CPU/request: server {server:.2f} ms, PostgreSQL {pg:.2f} ms"


def table(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    ceiling, app = r["ceiling_closed"], r["app_closed"]
    ratio = app["throughput_rps"] / ceiling["throughput_rps"]
    op, cop = r["app_open"], r["ceiling_open"]
    op_errors = sum(op["errors"].values()) + op["answered"] - op["ok_2xx"]
    login = r["login"]
    login_ratio = login["throughput_rps"] / r["hash_rate"]
    idle, flood = r["probe_idle"], r["probe_flood"]
    flood_ratio = flood["p99_ms"] / idle["p99_ms"]
    rows = [
        (f"ceiling: bare Starlette + psycopg, closed loop, {CONNECTIONS} conns",
         f"{_f(ceiling['throughput_rps'], 0)} rps (p50 {_f(ceiling['p50_ms'])} ms,"
         f" p99 {_f(ceiling['p99_ms'])} ms, non-2xx {ceiling['non_2xx']}){_cpu(ceiling)}", "", ""),
        (f"app: GET /api/v1/products, closed loop, {CONNECTIONS} conns",
         f"{_f(app['throughput_rps'], 0)} rps (p50 {_f(app['p50_ms'])} ms,"
         f" p99 {_f(app['p99_ms'])} ms, non-2xx {app['non_2xx']}){_cpu(app)}", "", ""),
        ("app / ceiling throughput", f"{ratio:.2f}", ">= 0.50", verdict(ratio >= 0.5)),
    ]  # fmt: skip
    for variant in LIST_WHATIFS:
        if f"{variant}_closed" not in r:
            continue
        fix = r[f"{variant}_closed"]
        fix_ratio = fix["throughput_rps"] / ceiling["throughput_rps"]
        rows.append(
            (f"what-if `{variant}` (bench/api/whatif.py), closed loop, {CONNECTIONS} conns",
             f"{_f(fix['throughput_rps'], 0)} rps = {fix_ratio:.2f} of the ceiling"
             f" (p99 {_f(fix['p99_ms'])} ms, non-2xx {fix['non_2xx']}){_cpu(fix)}",
             "", "")
        )  # fmt: skip
    rows += [
        (f"app open loop at {_f(op['target_rps'], 0)} rps (half the ceiling), {CONNECTIONS} conns",
         f"p50 {_f(op['p50_ms'])} / p90 {_f(op['p90_ms'])} / p99 {_f(op['p99_ms'])} /"
         f" max {_f(op['max_ms'])} ms; {op['answered']} answered, {op_errors} errors",
         "p99 < 25 ms", verdict(op["p99_ms"] < 25 and op_errors == 0)),
        (f"ceiling, same open loop ({_f(cop['target_rps'], 0)} rps), for reference",
         f"p50 {_f(cop['p50_ms'])} / p90 {_f(cop['p90_ms'])} / p99 {_f(cop['p99_ms'])} /"
         f" max {_f(cop['max_ms'])} ms; {cop['answered']} answered,"
         f" {sum(cop['errors'].values())} errors", "", ""),
        (f"raw argon2id verify (m=19 MiB, t=2, p=1), {r['hash_threads']} threads",
         f"{_f(r['hash_rate'])} /s (median of {', '.join(_f(x) for x in r['hash_rates'])});"
         f" {_f(r['hash_cpu_ms'])} ms CPU each", "", ""),
        (f"POST /api/v1/auth/login, closed loop, {LOGIN_CONNECTIONS} conns",
         f"{_f(login['throughput_rps'])} /s (p50 {_f(login['p50_ms'])} ms,"
         f" non-2xx {login['non_2xx']}){_cpu(login)}", "", ""),
        ("login / raw hash rate", f"{login_ratio:.2f}", ">= 0.85", verdict(login_ratio >= 0.85)),
        *(
            (f"what-if `{v}` (bench/api/whatif.py): login, closed loop, {LOGIN_CONNECTIONS} conns",
             f"{_f(r[f'{v}_login']['throughput_rps'])} /s ="
             f" {r[f'{v}_login']['throughput_rps'] / r['hash_rate']:.2f} of the raw hash rate"
             f"{_cpu(r[f'{v}_login'])}", "", "")
            for v in LOGIN_WHATIFS
            if f"{v}_login" in r
        ),
        (f"list p99, open loop {_f(idle['target_rps'], 0)} rps, idle",
         f"{_f(idle['p99_ms'])} ms (p50 {_f(idle['p50_ms'])}, max {_f(idle['max_ms'])})", "", ""),
        (f"list p99, open loop {_f(flood['target_rps'], 0)} rps, during a login flood",
         f"{_f(flood['p99_ms'])} ms (p50 {_f(flood['p50_ms'])}, max {_f(flood['max_ms'])});"
         f" flood {_f(r['flood_login'].get('throughput_rps', math.nan))} logins/s",
         "", ""),
        ("flood p99 / idle p99", f"{flood_ratio:.1f}x", "<= 2x", verdict(flood_ratio <= 2)),
    ]  # fmt: skip
    if "app-logged_closed" in r:
        logged = r["app-logged_closed"]
        logged_ratio = logged["throughput_rps"] / ceiling["throughput_rps"]
        rows.append(
            ("app with the access log on (info, JSON to a file), closed loop, interleaved",
             f"{_f(logged['throughput_rps'], 0)} rps = {logged_ratio:.2f}"
             f" of the ceiling (p99 {_f(logged['p99_ms'])} ms, non-2xx {logged['non_2xx']})"
             f"{_cpu(logged)}", "", "")
        )  # fmt: skip
    return rows


def markdown(r: dict[str, Any], command: str, when: str) -> str:
    m = r["machine"]
    lines = [
        BEGIN,
        "## API: product list, open-loop latency, login (bench/api)",
        "",
        f"Measured {when} with `{command}` on {m['cpus']} cores ({m['cpu']}), {m['memory']},"
        f" Linux {m['kernel']}, Python {m['python']}, commit {m['commit']}; load average"
        f" {m['load']} at the start and {r.get('load_end', '?')} at the end (other jobs shared"
        f" the machine)."
        f" The app is `impextech demo` (one uvicorn worker, embedded PostgreSQL, demo data),"
        f" access log off (`IMPEXTECH_LOG_LEVEL=warning`) unless the row says otherwise."
        f" Closed loops: {r['tool_closed']}, {_f(r['plan']['closed'], 0)} s per server in"
        f" {2 * r['plan']['rounds']} interleaved slices after a {_f(r['plan']['warmup'], 0)} s"
        f" warm-up. Open loops: `bench/api/loadgen.py`,"
        f" latency from the scheduled send time. Response body: {r['body_bytes']} bytes."
        f" Database connections: {r.get('pool_size', '?')} for the app's pool and the ceiling's.",
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
    elif VET_BEGIN in text:
        head, tail = text.split(VET_BEGIN, 1)
        text = head + block + "\n\n" + VET_BEGIN + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short phases; docs left untouched")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--whatif", action="store_true", help="measure the what-if variant in --quick")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.whatif:
        plan = dataclasses.replace(plan, whatif=True)
    command = ".venv/bin/python bench/api/run.py" + (" --quick" if args.quick else "")
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
