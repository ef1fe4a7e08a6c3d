"""The composition root for the web process: settings in, a wired ASGI application out."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from impextech.kernel.contexts import Assembly, Process
from impextech.kernel.domain.errors import ImpextechError, NotFound
from impextech.kernel.web import error_response, problem_response, problem_responses
from impextech.platform.assembly import assemble
from impextech.platform.console import console_router
from impextech.platform.database import head_revision
from impextech.platform.edge import (
    BodyGuard,
    HttpMetrics,
    ProblemCORSMiddleware,
    RequestObserver,
    install_method_routing,
)
from impextech.platform.settings import Settings

log = structlog.get_logger("impextech.app")

_STATUS_CODES = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("body-too-large", "The request body is too large"),
    415: ("unsupported-media-type", "Send the body as application/json"),
}


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(
            request, 400, "malformed-json", "The body is not valid JSON", _first_message(errors)
        )
    issues = [
        {
            "path": [str(p) for p in e.get("loc", ())],
            "message": e.get("msg", ""),
            "type": e.get("type"),
        }
        for e in errors
    ]
    return problem_response(
        request,
        422,
        "validation-failed",
        "The request is not valid",
        f"{len(issues)} invalid field(s)",
        errors=issues,
    )


def _first_message(errors: Any) -> str:
    first = errors[0] if errors else {}
    return str(first.get("ctx", {}).get("error", first.get("msg", "")))


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ImpextechError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code, title = _STATUS_CODES.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            request, exc.status_code, code, title, detail, headers=dict(exc.headers or {})
        )

    async def on_pool_timeout(request: Request, exc: Exception) -> Response:
        log.warning("database pool exhausted", path=request.url.path)
        return problem_response(
            request, 503, "busy", "The service is busy; retry shortly", headers={"Retry-After": "1"}
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(request, 500, "internal-error", "Internal error")

    app.add_exception_handler(ImpextechError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(PoolTimeout, on_pool_timeout)
    app.add_exception_handler(Exception, on_crash)


def install_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served from this process: no CDN, so the CSP can stay 'self'."""
    static = resources.files("fastapi_offline").joinpath("static")
    app.mount("/docs/static", StaticFiles(directory=str(static)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Impextech API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Impextech API",
            redoc_js_url="/docs/static/redoc.standalone.js",
            redoc_favicon_url="/docs/static/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings, app_conninfo: str) -> FastAPI:
    """Every context's web parts over one database handle; nothing connects until first use."""
    return web_app(settings, assemble(Process.WEB, settings, app_conninfo))


def web_app(settings: Settings, assembly: Assembly) -> FastAPI:
    """The ASGI application serving an assembled WEB process."""
    database = assembly.database
    expected_revision = head_revision()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await assembly.close()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Impextech API",
        version="1.0.0",
        description=(
            "Multi-tenant marketplace API. Anonymous calls name their marketplace with an "
            "`X-Tenant` header or a subdomain; authenticated calls act in their token's "
            "marketplace. Every error is RFC 9457 problem+json."
        ),
        lifespan=lifespan,
    )
    for name, value in assembly.state.items():
        setattr(app.state, name, value)
    app.state.assembly = assembly
    app.state.database = database
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    for collector in assembly.collectors:
        registry.register(collector)
    install_problem_handlers(app)
    for router in assembly.routers:
        app.include_router(router)
    app.include_router(console_router(assembly.console_pages))

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness: the process answers",
        responses=problem_responses(inputs=False),
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the database answers and its schema is current",
        responses=problem_responses(503, inputs=False),
    )
    async def readyz(request: Request) -> Response:
        try:
            with anyio.fail_after(2):
                async with database.transaction(None) as conn:
                    cur = await conn.execute("SELECT version_num FROM alembic_version")
                    row = await cur.fetchone()
                    current = row.version_num if row else None
        except Exception as exc:
            log.warning("not ready", error=str(exc))
            return problem_response(
                request, 503, "not-ready", "The database is not reachable", type(exc).__name__
            )
        if current != expected_revision:
            return problem_response(
                request, 503, "not-ready", "The schema is not current",
                f"at {current}, expected {expected_revision}",
            )  # fmt: skip
        return JSONResponse({"status": "ready", "schema": current})

    metrics_token = settings.platform.metrics_token

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (with IMPEXTECH_METRICS_TOKEN as a bearer token)",
        response_class=Response,
        responses=problem_responses(404, inputs=False),
    )
    async def metrics(request: Request) -> Response:
        # Not public: without the configured token this path does not exist (404, as for any
        # unknown path), so the API's port reveals nothing about the platform's internals.
        presented = request.headers.get("authorization", "")
        if not metrics_token or not hmac.compare_digest(
            presented.encode(), f"Bearer {metrics_token}".encode()
        ):
            raise NotFound()
        return await render_metrics(assembly, registry)

    install_docs(app)
    install_method_routing(app)
    app.add_middleware(
        BodyGuard,
        max_body_bytes=settings.platform.max_body_bytes,
        exempt_prefixes=tuple(assembly.raw_body_prefixes),
    )
    if settings.platform.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=list(settings.platform.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Tenant", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestObserver, metrics=HttpMetrics(registry))
    return app


async def render_metrics(assembly: Assembly, registry: CollectorRegistry) -> Response:
    """The registry in Prometheus' text format, after the collectors that read the database
    have refreshed (a database that does not answer leaves them stale, not the scrape failed)."""
    try:
        with anyio.fail_after(2):
            for refresh in assembly.scrape_hooks:
                await refresh()
    except Exception as exc:
        log.warning("metrics not refreshed", error=str(exc))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
