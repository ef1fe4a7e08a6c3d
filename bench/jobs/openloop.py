"""An open-loop POST generator whose every request carries its own body (a unique SKU).

    .venv/bin/python bench/jobs/openloop.py --port N --path /api/v1/products \
        --header 'Authorization: Bearer …' --rate 50 --duration 30 --sku-prefix A

The machinery is bench/api/loadgen.py's (keep-alive connections on uvloop + httptools, request
*i* due at ``start + i / rate``, latency measured from the scheduled time, so a slow server's
queue is counted); only the payload differs per request, since product SKUs are unique. The
connection count is the most requests that may be in flight at once (the wrk2 model); set it
above rate x the slowest expected answer so the generator itself never holds requests back.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop

from api.loadgen import Connection, ResponseFailed, Stats, build_request, percentile, summary
from api.loadgen import connect as open_connection


def body(prefix: str, i: int) -> str:
    return json.dumps(
        {
            "sku": f"{prefix}-{i}",
            "name": f"Bench product {i}",
            "category": "bench",
            "price": {"amount": 1000 + i % 100, "currency": "EUR"},
            "stock": 1,
        }
    )


async def run(
    port: int, path: str, headers: list[str], prefix: str, rate: float, duration: float,
    connections: int, grace: float,
) -> tuple[Stats, float, int, dict[int, float]]:  # fmt: skip
    stats = Stats()
    total = int(rate * duration)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    in_flight = 0
    peak = 0
    worst: dict[int, float] = {}  # slowest answer per second of the schedule
    start = time.perf_counter() + 0.05

    async def worker() -> None:
        nonlocal in_flight, peak
        conn: Connection | None = None
        while True:
            item = await queue.get()
            if item is None:
                break
            i, due = item
            payload = build_request("POST", path, port, headers, body(prefix, i))
            stats.sent += 1
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                if conn is None or conn.closed:
                    conn = await open_connection(port)
                status = await conn.request(payload)
            except (OSError, ResponseFailed, AssertionError) as exc:
                stats.errors[type(exc).__name__] += 1
                conn = None
                continue
            finally:
                in_flight -= 1
            latency = time.perf_counter() - due
            stats.record(status, latency)
            second = int(due - start)
            worst[second] = max(worst.get(second, 0.0), latency)
        if conn is not None:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    sent = 0
    while sent < total:
        now = time.perf_counter()
        while sent < total and start + sent / rate <= now:
            queue.put_nowait((sent, start + sent / rate))
            sent += 1
        if sent < total:
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=duration + grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    unanswered = total - len(stats.latencies) - sum(stats.errors.values())
    if unanswered:
        stats.errors["no answer within grace period"] += unanswered
    return stats, time.perf_counter() - start, peak, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    ap.add_argument("--path", required=True)
    ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    ap.add_argument("--sku-prefix", required=True)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds (at most 300)")
    ap.add_argument("--connections", type=int, default=1200)
    ap.add_argument("--grace", type=float, default=30.0, help="wait for stragglers, seconds")
    args = ap.parse_args()
    if not 0 < args.duration <= 300 or not 0 < args.rate <= 2000 or args.connections < 1:
        ap.error("duration in (0, 300], rate in (0, 2000], connections >= 1")
    headers = ["Content-Type: application/json", *args.header]
    stats, elapsed, peak, worst = uvloop.run(
        run(args.port, args.path, headers, args.sku_prefix, args.rate, args.duration,
            args.connections, args.grace)
    )  # fmt: skip
    result = summary(stats, elapsed, mode="open", target_rps=args.rate, peak_in_flight=peak)
    result["p95_ms"] = percentile(sorted(stats.latencies), 95) * 1000
    seconds = max(worst) + 1 if worst else 0
    result["worst_per_second_ms"] = [round(worst.get(i, 0.0) * 1000, 1) for i in range(seconds)]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
