"""Pure-ASGI middleware at the edge: request ids, access logs, metrics, headers, body limits."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impextech.kernel.web import problem_response

log = structlog.get_logger("impextech.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_DOCS_PATHS = ("/docs", "/redoc")
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The docs pages run Swagger UI's inline bootstrap script; everything else they load is ours.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    b" img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:;"
    b" frame-ancestors 'none'"
)
_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "impextech_http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "impextech_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class RequestObserver:
    """Request id in and out, security headers, one access-log line and metrics per request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        path: str = scope["path"]
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in _BASE_HEADERS if h[0] not in present)
                if b"content-security-policy" not in present:
                    csp = _DOCS_CSP if path.startswith(_DOCS_PATHS) else _API_CSP
                    headers.append((b"content-security-policy", csp))
                if path.startswith("/api/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = True
            await send_wrapper(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # Answer here, inside the observer, so even a crash carries the request id.
            log.exception("unhandled error", path=path)
            if response_started:
                raise
            status_holder[0] = 500
            crash = problem_response(None, 500, "internal-error", "Internal error")
            await crash(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            status = status_holder[0]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=path,
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                tenant_id=state.get("tenant_id"),
                user_id=state.get("user_id"),
            )


class BodyGuard:
    """413 above the size limit, 415 for a body that is not JSON on the JSON API."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, exempt_prefixes: tuple[str, ...] = ()):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length_header = _header(scope, b"content-length")
        has_body = _header(scope, b"transfer-encoding") is not None
        if length_header is not None:
            if not length_header.isdigit():
                await _reject(
                    scope, receive, send, 400, "bad-request", "Content-Length is not a number"
                )
                return
            if int(length_header) > self.max_body_bytes:
                await _reject(
                    scope, receive, send, 413, "body-too-large", "The request body is too large",
                    f"send at most {self.max_body_bytes} bytes",
                )  # fmt: skip
                return
            has_body = has_body or int(length_header) > 0
        path: str = scope["path"]
        if has_body and path.startswith("/api/") and not path.startswith(self.exempt_prefixes):
            media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if not (
                media == "application/json"
                or (media.startswith("application/") and media.endswith("+json"))
            ):
                await _reject(
                    scope, receive, send, 415, "unsupported-media-type",
                    "Send the body as application/json",
                )  # fmt: skip
                return
        await self.app(scope, _limited(receive, self.max_body_bytes), send)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413)
        return message

    return wrapped


async def _reject(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, title: str, detail: str = ""
) -> None:
    await problem_response(None, status, code, title, detail or None)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight answered as problem+json."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        detail = bytes(response.body).decode("utf-8", "replace")
        problem = problem_response(None, 400, "cors-refused", "CORS preflight refused", detail)
        for key, value in response.headers.items():
            if key.lower() not in ("content-type", "content-length"):
                problem.headers[key] = value
        return problem


@dataclass(frozen=True, slots=True)
class _Served:
    path: re.Pattern[str]
    parameters: int
    methods: frozenset[str]


class MethodRouting:
    """Answers 405 for a path no route serves with the request's method, naming every method
    that is served there.

    Routing alone tries routes in order and takes the first whose path and method both match:
    ``GET /api/v1/products/imports`` (served for POST only) fell through to
    ``GET /api/v1/products/{product_id}``, and a 405 named the methods of the first route
    whose path matched rather than all of them. Here the routes that serve a path are the most
    specific ones matching it (the fewest path parameters), across every router included.
    """

    def __init__(self, app: ASGIApp, routes_of: FastAPI) -> None:
        self.app = app
        self.routes_of = routes_of
        self._served: list[_Served] | None = None
        # Paths without parameters, answered by one dict look-up: they are most requests (the
        # product list, probes), and a route with no parameter is the most specific match.
        self._exact: dict[str, frozenset[str]] = {}

    def _table(self) -> list[_Served]:
        # Built at the first request: every router is included by then.
        if self._served is None:
            table = []
            exact: dict[str, frozenset[str]] = {}
            for context in iter_route_contexts(self.routes_of.routes):
                if context.methods and context.path:
                    regex, _, convertors = compile_path(context.path)
                    methods = frozenset(context.methods)
                    table.append(_Served(regex, len(convertors), methods))
                    if not convertors:
                        exact[context.path] = exact.get(context.path, frozenset()) | methods
            self._exact = exact
            self._served = table
        return self._served

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods served at ``path``, or None when no route with methods matches it."""
        table = self._table()
        found = self._exact.get(path)
        if found is not None:
            return found
        matching = [s for s in table if s.path.match(path)]
        if not matching:
            return None
        fewest = min(s.parameters for s in matching)
        return frozenset().union(*(s.methods for s in matching if s.parameters == fewest))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root: str = scope.get("root_path", "")
            path: str = scope["path"]
            allowed = self.allowed(path.removeprefix(root) if root else path)
            if allowed is not None and scope["method"] not in allowed:
                raise HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
        await self.app(scope, receive, send)


def install_method_routing(app: FastAPI) -> None:
    """Put ``MethodRouting`` in front of the app's router, inside its exception handlers (so a
    405 is the same problem+json as any other)."""
    app.router.middleware_stack = MethodRouting(app.router.middleware_stack, app)
