"""A tenant's ERP, played locally: product records per account, faults on demand, idempotency keys.

It stands alone (no platform code) so that it behaves like a partner we do not control. Everything
is in memory; a restart forgets records, keys and counters. See docs/sandbox.md.

Faults apply to the partner's own endpoints (``/accounts/...``), never to ``/_control``,
``/_stats``, ``/_reset`` or ``/healthz``. Each request draws its fate once, on arrival, from one
seeded generator: a latency, then at most one of

* drop: the write is applied, then the connection is closed without a byte of answer (the worst
  case a client must survive: the partner did the work and the answer was lost);
* timeout: the request is held for ``hold`` seconds, far past any sane client timeout, applying
  nothing, and then answered 504;
* error: 503 with ``Retry-After``, applying nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

PROBLEM_BASE = "https://impextech.example/problems/erp-sandbox/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_BODY_BYTES = 1 << 20
MAX_HOLD_SECONDS = 24 * 3600.0
# The protocol the sandbox's server uses puts the connection's transport here (see server.py).
TRANSPORT_EXTENSION = "impextech.sandbox.transport"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Fate = Literal["ok", "drop", "timeout", "error"]


class FaultError(ValueError):
    """A fault setting that makes no sense; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise FaultError(name, f"must be between 0 and 1, not {value}")


@dataclass(frozen=True, slots=True)
class Faults:
    latency_min: float = 0.0
    latency_max: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    hold: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.latency_min <= self.latency_max <= MAX_HOLD_SECONDS:
            raise FaultError(
                "latency",
                f"needs 0 <= min <= max <= {MAX_HOLD_SECONDS:g} seconds, "
                f"not {self.latency_min:g}..{self.latency_max:g}",
            )
        _rate("error_rate", self.error_rate)
        _rate("timeout_rate", self.timeout_rate)
        _rate("drop_rate", self.drop_rate)
        total = self.error_rate + self.timeout_rate + self.drop_rate
        if total > 1.0 + 1e-9:
            raise FaultError("error_rate", f"error, timeout and drop rates add up to {total:g} > 1")
        if not 0.0 < self.hold <= MAX_HOLD_SECONDS:
            raise FaultError("hold", f"must be above 0 and at most {MAX_HOLD_SECONDS:g} seconds")

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": [self.latency_min, self.latency_max],
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "drop_rate": self.drop_rate,
            "hold": self.hold,
        }

    def describe(self) -> str:
        latency = (
            f"{self.latency_min:g} s"
            if self.latency_min == self.latency_max
            else f"{self.latency_min:g}-{self.latency_max:g} s"
        )
        return (
            f"latency {latency}, error rate {self.error_rate:g}, timeout rate "
            f"{self.timeout_rate:g} (hold {self.hold:g} s), drop rate {self.drop_rate:g}"
        )


def parse_latency(raw: str) -> tuple[float, float]:
    """``"0.5"`` (fixed) or ``"0.2-1.5"`` (uniform in that range), in seconds."""
    try:
        fixed = float(raw)  # also "1e-3", whose "-" is not a range
    except ValueError:
        pass
    else:
        return fixed, fixed
    low, sep, high = raw.strip().partition("-")
    try:
        lo = float(low)
        hi = float(high) if sep else lo
    except ValueError:
        raise FaultError("latency", f"seconds as N or MIN-MAX, not {raw!r}") from None
    if lo != lo or hi != hi:  # NaN
        raise FaultError("latency", f"seconds as N or MIN-MAX, not {raw!r}")
    return lo, hi


def _number(name: str, value: object) -> float:
    # bool is an int in Python; JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(name, f"must be a number, not {json.dumps(value)}")
    return float(value)


def faults_from_json(current: Faults, body: Mapping[str, Any]) -> tuple[Faults, int | None]:
    """``current`` changed by a control request's fields; the new seed if one is given."""
    changes: dict[str, float] = {}
    seed: int | None = None
    allowed = {"latency", "error_rate", "timeout_rate", "drop_rate", "hold", "seed"}
    for name in body:
        if name not in allowed:
            raise FaultError(name, f"unknown setting; known: {', '.join(sorted(allowed))}")
    if "latency" in body:
        value = body["latency"]
        if isinstance(value, list):
            if len(value) != 2:
                raise FaultError("latency", "a number or a [min, max] pair of seconds")
            changes["latency_min"] = _number("latency", value[0])
            changes["latency_max"] = _number("latency", value[1])
        else:
            changes["latency_min"] = changes["latency_max"] = _number("latency", value)
    for name in ("error_rate", "timeout_rate", "drop_rate", "hold"):
        if name in body:
            changes[name] = _number(name, body[name])
    if "seed" in body:
        raw_seed = body["seed"]
        if isinstance(raw_seed, bool) or not isinstance(raw_seed, int):
            raise FaultError("seed", f"must be an integer, not {json.dumps(raw_seed)}")
        seed = raw_seed
    return replace(current, **changes), seed


@dataclass
class Record:
    account: str
    ref: str
    body: dict[str, Any]
    revision: int
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "ref": self.ref,
            "revision": self.revision,
            "updated_at": self.updated_at.isoformat(),
            "record": self.body,
        }


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: dict[str, Any]


@dataclass
class Stats:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    applied: int = 0
    stale: int = 0
    replayed: int = 0
    key_conflicts: int = 0
    rejected: int = 0
    errors_injected: int = 0
    timeouts_injected: int = 0
    drops_injected: int = 0

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def reset(self) -> None:
        """Zero the counters in place (requests still running will count themselves out)."""
        for f in fields(self):
            if f.name != "in_flight":
                setattr(self, f.name, 0)
        self.max_in_flight = self.in_flight


@dataclass
class ErpState:
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    stats: Stats = field(default_factory=Stats)
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    answers: dict[str, StoredAnswer] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def draw(self) -> tuple[float, Fate]:
        f = self.faults
        delay = f.latency_min
        if f.latency_max > f.latency_min:
            delay = self.rng.uniform(f.latency_min, f.latency_max)
        roll = self.rng.random()
        if roll < f.drop_rate:
            return delay, "drop"
        if roll < f.drop_rate + f.timeout_rate:
            return delay, "timeout"
        if roll < f.drop_rate + f.timeout_rate + f.error_rate:
            return delay, "error"
        return delay, "ok"


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


class DroppedConnection(Response):
    """Close the connection without sending a byte of the answer."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        if transport is None:
            raise RuntimeError("dropping a connection needs the sandbox's own server (server.py)")
        transport.close()
        # Return only once the server has seen the connection go, or it would answer 500.
        async with asyncio.timeout(5):
            while (await receive())["type"] != "http.disconnect":
                pass


async def _read_json_object(request: Request) -> dict[str, Any] | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return problem_response(413, "body-too-large", f"Bodies are at most {MAX_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return problem_response(400, "malformed-json", "The body is not JSON", str(exc))
    if not isinstance(parsed, dict):
        return problem_response(422, "not-an-object", "The body must be a JSON object")
    return parsed


def _bad_name(which: str, value: str) -> JSONResponse:
    return problem_response(
        404, "no-such-resource", f"No such {which}", f"{which} {value!r} is not a valid name"
    )


def create_app(state: ErpState | None = None) -> Starlette:
    """The sandbox ERP as an ASGI app over ``state`` (a fresh one if none is given)."""
    erp = state or ErpState()

    async def partner(request: Request, handle: Callable[[], Response]) -> Response:
        """Run ``handle`` under the current faults."""
        stats = erp.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            delay, fate = erp.draw()
            if delay > 0:
                await asyncio.sleep(delay)
            if fate == "timeout":
                stats.timeouts_injected += 1
                await asyncio.sleep(erp.faults.hold)
                return problem_response(504, "held", "Held on purpose (timeout fault)")
            if fate == "error":
                stats.errors_injected += 1
                return problem_response(
                    503,
                    "unavailable",
                    "Unavailable on purpose (error fault)",
                    headers={"Retry-After": "1"},
                )
            response = handle()
            if fate == "drop":
                stats.drops_injected += 1
                return DroppedConnection()
            return response
        finally:
            stats.in_flight -= 1

    async def put_product(request: Request) -> Response:
        account = request.path_params["account"]
        ref = request.path_params["ref"]
        if not _NAME.match(account):
            return _bad_name("account", account)
        if not _NAME.match(ref):
            return _bad_name("product", ref)
        key = request.headers.get("idempotency-key")
        if key is not None and not _KEY.match(key):
            erp.stats.rejected += 1
            return problem_response(
                400, "bad-idempotency-key", "Idempotency-Key must be 1-255 visible ASCII characters"
            )
        body = await _read_json_object(request)

        def handle() -> Response:
            # No await in here: checking the key and applying the write is one atomic step.
            if isinstance(body, JSONResponse):
                erp.stats.rejected += 1
                return body
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
            fingerprint = hashlib.sha256(
                f"PUT {request.url.path}\n{canonical}".encode()
            ).hexdigest()
            if key is not None and key in erp.answers:
                stored = erp.answers[key]
                if stored.fingerprint != fingerprint:
                    erp.stats.key_conflicts += 1
                    return problem_response(
                        422,
                        "idempotency-key-reused",
                        "This Idempotency-Key was used for another request",
                        f"key {key!r} was first sent with a different path or body",
                    )
                erp.stats.replayed += 1
                return JSONResponse(
                    stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
                )
            status, answer = _apply(erp, account, ref, body)
            if key is not None:
                erp.answers[key] = StoredAnswer(fingerprint, status, answer)
            return JSONResponse(answer, status_code=status)

        return await partner(request, handle)

    async def get_product(request: Request) -> Response:
        account = request.path_params["account"]
        ref = request.path_params["ref"]

        def handle() -> Response:
            record = erp.records.get((account, ref))
            if record is None:
                return problem_response(404, "no-such-product", "No such product record")
            return JSONResponse(record.to_json())

        return await partner(request, handle)

    async def list_products(request: Request) -> Response:
        account = request.path_params["account"]

        def handle() -> Response:
            items = [
                r.to_json()
                for (acc, _), r in sorted(erp.records.items(), key=lambda kv: kv[0])
                if acc == account
            ]
            return JSONResponse({"account": account, "items": items})

        return await partner(request, handle)

    async def get_control(request: Request) -> Response:
        return JSONResponse({**erp.faults.to_json(), "seed": erp.seed})

    async def post_control(request: Request) -> Response:
        body = await _read_json_object(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            faults, seed = faults_from_json(erp.faults, body)
        except FaultError as exc:
            return problem_response(
                422,
                "bad-fault-setting",
                "The fault settings are not valid",
                str(exc),
                errors=[{"path": [exc.field], "message": exc.message}],
            )
        erp.faults = faults
        if "seed" in body:
            erp.reseed(seed)
        return JSONResponse({**erp.faults.to_json(), "seed": erp.seed})

    async def get_stats(request: Request) -> Response:
        return JSONResponse(
            {**erp.stats.to_json(), "records": len(erp.records), "keys": len(erp.answers)}
        )

    async def post_reset(request: Request) -> Response:
        erp.records.clear()
        erp.answers.clear()
        erp.stats.reset()
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem_response(404, "no-such-resource", "No such resource", request.url.path)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return problem_response(405, "method-not-allowed", "Method not allowed")

    routes = [
        Route("/accounts/{account}/products/{ref}", put_product, methods=["PUT"]),
        Route("/accounts/{account}/products/{ref}", get_product, methods=["GET"]),
        Route("/accounts/{account}/products", list_products, methods=["GET"]),
        Route("/_control", get_control, methods=["GET"]),
        Route("/_control", post_control, methods=["POST"]),
        Route("/_stats", get_stats, methods=["GET"]),
        Route("/_reset", post_reset, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.erp = erp
    return app


def _apply(
    erp: ErpState, account: str, ref: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Store ``body``, unless it carries a ``version`` older than the stored one (kept, 200)."""
    existing = erp.records.get((account, ref))
    incoming = _int_or_none(body.get("version"))
    stored = None if existing is None else _int_or_none(existing.body.get("version"))
    if existing is not None and incoming is not None and stored is not None and stored > incoming:
        erp.stats.stale += 1
        return 200, {**existing.to_json(), "applied": False}
    now = erp.clock()
    if existing is None:
        record = Record(account, ref, body, 1, now)
        erp.records[(account, ref)] = record
        status = 201
    else:
        existing.body, existing.revision, existing.updated_at = body, existing.revision + 1, now
        record, status = existing, 200
    erp.stats.applied += 1
    return status, {**record.to_json(), "applied": True}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
