"""Timing claims the test suite no longer makes with a stopwatch, measured here instead.

    .venv/bin/python bench/timing/timing_claims.py  # about 2 minutes; prints a Markdown table
    .venv/bin/python bench/timing/timing_claims.py --rounds 8  # fewer login rounds, quick look

The tests prove each behaviour by counting or by cause and effect (one argon2 verification per
login whatever the email; the ERP still holding a request the gateway gave up on; the event loop
answering while an import file is read), so they stay green on a loaded machine. How long things
take is a question for a quiet machine, and for this script:

* login: unknown email against wrong password, interleaved, against `impextech demo`;
* an import header of 500,000 columns: how long its refusal takes and how large it is, against
  a one-column header refused for the same reason;
* a cheap request's latency while a 10,000-row import file is submitted, against idle;
* the sandbox ERP at 2 s latency: 400 concurrent requests, wall time and the most in flight;
* the ERP gateway's cut-off at its 0.5 s timeout against a partner that answers after 60 s.

Everything runs against 127.0.0.1 and stops by itself (the demo server and its embedded
PostgreSQL are stopped on failure and on Ctrl+C, its data directory deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parents[1]
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from api.run import (  # noqa: E402  (after the path is set)
    BIN,
    HOST,
    LIST_PATH,
    LOGIN_PASSWORD,
    Servers,
    app_env,
    free_port,
    log,
    machine,
    stop_on_signals,
)
from impextech.catalog.adapters.erp_http import HttpErpGateway  # noqa: E402
from impextech.catalog.domain.imports import COLUMNS  # noqa: E402
from impextech.catalog.domain.model import Product, ProductStatus  # noqa: E402
from impextech.catalog.service.erp_sync import ErpTransientError  # noqa: E402
from impextech.kernel.domain.clock import SystemClock  # noqa: E402
from impextech.kernel.domain.money import Money  # noqa: E402
from impextech.resilience.api import BreakerPolicy, CircuitBreaker  # noqa: E402
from impextech.sandbox.erp import ErpState, Faults, create_app  # noqa: E402
from impextech.sandbox.server import serving  # noqa: E402

SELLER_EMAIL = "seller1@acme.example"
ACME = {"X-Tenant": "acme"}
Row = tuple[str, str]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await call()
    return time.perf_counter() - started, response


# Wrong-password attempts count against each account (10 per 15 minutes by default), so the
# known side rotates over the demo marketplace's four accounts.
KNOWN = tuple(f"{who}@acme.example" for who in ("shopper", "admin", "seller1", "seller2"))


async def login_timing(client: httpx.AsyncClient, rounds: int) -> list[Row]:
    async def attempt(email: str) -> float:
        for _ in range(5):  # a throttled attempt is waited out (briefly) and not counted
            elapsed, response = await timed(
                lambda: client.post(
                    "/api/v1/auth/login",
                    json={"email": email, "password": "wrong-password-x"},
                    headers=ACME,
                )
            )
            if response.status_code != 429:
                break
            wait = float(response.headers.get("retry-after", "1"))
            if wait > 5:
                raise SystemExit(f"login throttled for {wait:g} s; lower --rounds")
            await asyncio.sleep(wait)
        assert response.status_code == 401, response.text
        return elapsed

    unknown: list[float] = []
    known: list[float] = []
    for i in range(rounds):  # interleaved: a drift in the machine's load weighs on both alike
        unknown.append(await attempt(f"ghost{i}@acme.example"))
        known.append(await attempt(KNOWN[i % len(KNOWN)]))
    ratio = statistics.median(unknown) / statistics.median(known)
    return [
        (f"login, unknown email, median of {rounds}", _ms(statistics.median(unknown))),
        (f"login, wrong password, median of {rounds}", _ms(statistics.median(known))),
        ("unknown / wrong-password median ratio (1.0 = no oracle)", f"{ratio:.2f}"),
    ]


async def import_refusals(client: httpx.AsyncClient, auth: dict[str, str]) -> list[Row]:
    headers = {**auth, "Content-Type": "text/csv"}
    huge = (",".join(["x"] * 500_000) + "\nA\n").encode()
    small = b"x\nA\n"
    huge_times: list[float] = []
    small_times: list[float] = []
    size = 0
    for _ in range(5):
        elapsed, response = await timed(
            lambda: client.post("/api/v1/products/imports", content=huge, headers=headers)
        )
        assert response.status_code == 422, response.text[:300]
        huge_times.append(elapsed)
        size = len(response.content)
        elapsed, response = await timed(
            lambda: client.post("/api/v1/products/imports", content=small, headers=headers)
        )
        assert response.status_code == 422, response.text[:300]
        small_times.append(elapsed)
    return [
        (
            "import header of 500,000 columns refused, median of 5",
            f"{_ms(statistics.median(huge_times))}, answer {size} bytes",
        ),
        (
            "import header of 1 column refused, median of 5",
            _ms(statistics.median(small_times)),
        ),
    ]


async def loop_during_submit(client: httpx.AsyncClient, auth: dict[str, str]) -> list[Row]:
    lines = [",".join(COLUMNS)]
    lines += [
        f"BENCH-{uuid.uuid4().hex[:10]},Item {i},,bench,{100 + i},EUR,1" for i in range(9_999)
    ]
    body = ("\n".join(lines) + "\n").encode()
    headers = {**auth, "Content-Type": "text/csv"}

    async def cheap() -> float:
        elapsed, response = await timed(lambda: client.get("/healthz"))
        assert response.status_code == 200
        return elapsed

    idle = [await cheap() for _ in range(20)]
    during: list[float] = []
    for _ in range(5):
        submitting = asyncio.create_task(
            client.post("/api/v1/products/imports", content=body, headers=headers)
        )
        await asyncio.sleep(0.005)  # the upload is on its way; probe while it is read
        while not submitting.done():
            during.append(await cheap())
        assert (await submitting).status_code == 202

    def spread(xs: list[float]) -> str:
        return f"median {_ms(statistics.median(xs))}, max {_ms(max(xs))}" if xs else "none"

    return [
        (f"cheap request (/healthz), idle, {len(idle)} requests", spread(idle)),
        (
            f"cheap request while a {len(body) // 1024} KiB, 9,999-row file is submitted,"
            f" {len(during)} requests",
            spread(during),
        ),
    ]


async def sandbox_concurrency() -> list[Row]:
    state = ErpState()
    state.faults = Faults(latency_min=2, latency_max=2)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with (
        serving(create_app(state)) as url,
        httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as many,
    ):
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(many.put(f"/accounts/acme/products/p-{i}", json={}) for i in range(400))
        )
        elapsed = time.perf_counter() - started
    assert all(a.status_code == 201 for a in answers)
    return [
        (
            "sandbox ERP, 400 concurrent requests at 2 s latency",
            f"{elapsed:.2f} s wall, {state.stats.max_in_flight} in flight at most",
        )
    ]


async def gateway_cut_off() -> list[Row]:
    state = ErpState()
    state.faults = Faults(latency_min=60, latency_max=60)
    breaker = CircuitBreaker("erp", BreakerPolicy(1000, timedelta(seconds=30)), SystemClock())
    now = datetime.now(UTC)
    times: list[float] = []
    async with serving(create_app(state)) as url:
        gateway = HttpErpGateway(url, breaker, timeout=0.5)
        try:
            for i in range(5):
                product = Product(
                    uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), f"B-{i}", "Bench", "", "bench",
                    Money(100, "EUR"), 1, ProductStatus.ACTIVE, 1, now, now,
                )  # fmt: skip
                started = time.perf_counter()
                try:
                    await gateway.push_product(product, f"bench-{i}")
                except ErpTransientError:
                    times.append(time.perf_counter() - started)
        finally:
            await gateway.aclose()
    return [
        (
            "ERP gateway gives up on a 60 s partner (timeout 0.5 s), median of 5",
            _ms(statistics.median(times)) if times else "never",
        )
    ]


async def against_the_demo(port: int, rounds: int) -> list[Row]:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        rows = await login_timing(client, rounds)
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": SELLER_EMAIL, "password": LOGIN_PASSWORD},
            headers=ACME,
        )
        assert response.status_code == 200, response.text
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        rows += await import_refusals(client, auth)
        rows += await loop_during_submit(client, auth)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=36, help="login attempts per kind")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="impextech-timing-"))
    data_dir.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
    servers = Servers(data_dir)
    app_log = data_dir / "app.log"
    rows: list[Row] = []
    with stop_on_signals():
        try:
            port = free_port()
            log(f"starting impextech demo on {port} (data dir {data_dir})")
            servers.start(
                "app", [str(BIN / "impextech"), "demo"], app_env(data_dir, port, "warning"), app_log
            )
            servers.wait_ready("app", port, LIST_PATH, 120, app_log)
            rows += asyncio.run(against_the_demo(port, args.rounds))
        finally:
            servers.stop_all()
            shutil.rmtree(data_dir, ignore_errors=True)
    rows += asyncio.run(sandbox_concurrency())
    rows += asyncio.run(gateway_cut_off())
    info = machine()
    where = ", ".join(f"{k} {v}" for k, v in info.items())
    print(f"\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {where}\n")
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
