"""A small HTTP/1.1 load generator on raw asyncio sockets (uvloop + httptools).

Two modes, both bounded in requests and in time, both aimed at 127.0.0.1 only:

* ``open``: a constant arrival rate. Request *i* is due at ``start + i / rate``; a dispatcher
  hands due requests to a fixed set of keep-alive connections. Latency is measured from the
  *scheduled* time, so when the server (or the generator) falls behind, the wait shows up in
  the figures instead of being hidden (no coordinated omission, as in wrk2).
* ``closed``: N connections, each sending its next request as soon as the previous answer
  arrives (the wrk model); a fallback when wrk is not installed.

Prints one JSON object on stdout. Run ``python bench/api/loadgen.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import uvloop

LOCALHOST = "127.0.0.1"


class ResponseFailed(Exception):
    """The connection broke or the answer could not be parsed."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they quack alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ResponseFailed(f"bad response: {exc}"))

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())
        if not self.parser.should_keep_alive():
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseFailed("connection closed"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def request(self, payload: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    def record(self, status: int, latency: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency)


def build_request(method: str, path: str, port: int, headers: list[str], body: str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOCALHOST}:{port}"]
    lines += headers
    raw_body = body.encode() if body is not None else b""
    if body is not None:
        lines.append(f"Content-Length: {len(raw_body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw_body


async def connect(port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, LOCALHOST, port)
    return conn


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (seconds in, seconds out)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _exchange(conn: Connection | None, port: int, payload: bytes) -> tuple[Connection, int]:
    if conn is None or conn.closed:
        conn = await connect(port)
    return conn, await conn.request(payload)


async def open_loop(
    port: int, payload: bytes, rate: float, duration: float, connections: int, grace: float
) -> tuple[Stats, float]:
    stats = Stats()
    total = int(rate * duration)
    queue: asyncio.Queue[float | None] = asyncio.Queue()

    async def worker() -> None:
        conn: Connection | None = None
        while True:
            due = await queue.get()
            if due is None:
                break
            stats.sent += 1
            try:
                conn, status = await _exchange(conn, port, payload)
            except (OSError, ResponseFailed, AssertionError) as exc:
                stats.errors[type(exc).__name__] += 1
                conn = None
                continue
            stats.record(status, time.perf_counter() - due)
        if conn is not None:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    sent = 0
    while sent < total:
        now = time.perf_counter()
        while sent < total and start + sent / rate <= now:
            queue.put_nowait(start + sent / rate)
            sent += 1
        if sent < total:
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    # Whatever was still queued or in flight when the grace period ran out never got an answer.
    unanswered = total - len(stats.latencies) - sum(stats.errors.values())
    if unanswered:
        stats.errors["no answer within grace period"] += unanswered
    return stats, time.perf_counter() - start


async def closed_loop(
    port: int, payload: bytes, duration: float, connections: int, max_requests: int
) -> tuple[Stats, float]:
    stats = Stats()
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        conn: Connection | None = None
        while time.perf_counter() < deadline and stats.sent < max_requests:
            stats.sent += 1
            began = time.perf_counter()
            try:
                conn, status = await _exchange(conn, port, payload)
            except (OSError, ResponseFailed, AssertionError) as exc:
                stats.errors[type(exc).__name__] += 1
                conn = None
                continue
            stats.record(status, time.perf_counter() - began)
        if conn is not None:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    _, pending = await asyncio.wait(workers, timeout=duration + 10)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return stats, time.perf_counter() - start


def summary(stats: Stats, elapsed: float, **extra: Any) -> dict[str, Any]:
    lat = sorted(stats.latencies)
    ms = {f"p{p:g}_ms": percentile(lat, p) * 1000 for p in (50, 90, 99, 99.9)}
    ok = sum(n for s, n in stats.statuses.items() if 200 <= s < 300)
    return {
        **extra,
        "sent": stats.sent,
        "answered": len(lat),
        "ok_2xx": ok,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": dict(stats.errors),
        "elapsed_s": elapsed,
        "throughput_rps": len(lat) / elapsed if elapsed > 0 else 0.0,
        **ms,
        "max_ms": lat[-1] * 1000 if lat else math.nan,
        "mean_ms": sum(lat) / len(lat) * 1000 if lat else math.nan,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    ap.add_argument("--path", default="/")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    ap.add_argument("--body", default=None)
    ap.add_argument("--mode", choices=["open", "closed"], default="open")
    ap.add_argument("--rate", type=float, default=100.0, help="open loop: requests per second")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (at most 600)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--grace", type=float, default=10.0, help="open loop: wait for stragglers")
    ap.add_argument("--max-requests", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    if not 0 < args.duration <= 600 or args.rate <= 0 or args.connections < 1:
        ap.error("duration must be in (0, 600], rate > 0, connections >= 1")
    if args.mode == "open" and args.rate * args.duration > args.max_requests:
        ap.error("rate x duration exceeds --max-requests")
    payload = build_request(args.method, args.path, args.port, args.header, args.body)

    async def go() -> dict[str, Any]:
        if args.mode == "open":
            stats, elapsed = await open_loop(
                args.port, payload, args.rate, args.duration, args.connections, args.grace
            )
            return summary(stats, elapsed, mode="open", target_rps=args.rate)
        stats, elapsed = await closed_loop(
            args.port, payload, args.duration, args.connections, args.max_requests
        )
        return summary(stats, elapsed, mode="closed", connections=args.connections)

    result = uvloop.run(go())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
