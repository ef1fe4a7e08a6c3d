"""The composition root for the web process: settings in, a wired ASGI application out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
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

from impextech.catalog.adapters.http import CatalogWeb
from impextech.catalog.adapters.http import router as products_router
from impextech.catalog.adapters.sql import SqlCatalogUnitOfWork
from impextech.catalog.api import ImportsWeb, imports_router, product_imports
from impextech.catalog.service.products import CatalogService
from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.http import auth as auth_router
from impextech.identity.adapters.http import users as users_router
from impextech.identity.adapters.jwt_tokens import JwtAccessTokenCodec
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.adapters.web_context import IdentityWeb
from impextech.identity.service.auth import AuthPolicy, AuthService, RateLimit
from impextech.identity.service.tenants import TenantDirectory
from impextech.identity.service.users import UserService
from impextech.jobs.api import JobsService, JobsWeb, QueueGauges, SqlJobsUnitOfWork, jobs_router
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.kernel.domain.errors import ImpextechError
from impextech.kernel.web import error_response, problem_response, problem_responses
from impextech.platform.console import router as console_router
from impextech.platform.database import head_revision
from impextech.platform.edge import BodyGuard, HttpMetrics, ProblemCORSMiddleware, RequestObserver
from impextech.platform.jobs import make_queue
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
    """Wire every context over one engine; nothing connects until the first request."""
    database = Database.connect(app_conninfo, size=settings.db_pool_size)
    clock = SystemClock()
    cursors = CursorCodec(settings.secret_key)
    limit, window = settings.auth_rate_limit
    hasher = Argon2PasswordHasher(settings.hash_concurrency)
    auth = AuthService(
        uow=lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id),
        hasher=hasher,
        tokens=JwtAccessTokenCodec(settings.secret_key, settings.access_token_seconds),
        clock=clock,
        policy=AuthPolicy(
            refresh_lifetime=timedelta(days=settings.refresh_token_days),
            per_address=RateLimit(limit, window),
            per_account=RateLimit(limit, window),
        ),
    )
    expected_revision = head_revision()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()
        hasher.close()

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
    app.state.identity = IdentityWeb(
        auth=auth,
        users=UserService(lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id), clock),
        tenants=TenantDirectory(SqlTenantStore(database)),
        cursors=cursors,
        base_domains=settings.base_domains,
    )
    queue = make_queue(settings, app_conninfo)
    app.state.catalog = CatalogWeb(
        CatalogService(lambda tenant_id: SqlCatalogUnitOfWork(database, tenant_id, queue), clock),
        cursors,
    )
    app.state.catalog_imports = ImportsWeb(product_imports(database, queue, clock))
    app.state.jobs = JobsWeb(
        JobsService(lambda tenant_id: SqlJobsUnitOfWork(database, tenant_id, queue), clock),
        cursors,
    )
    app.state.job_queue = queue
    app.state.database = database
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    queue_gauges = QueueGauges(database, registry, queue.queue_names)
    install_problem_handlers(app)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(imports_router)
    app.include_router(products_router)
    app.include_router(jobs_router)
    app.include_router(console_router)

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

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses=problem_responses(inputs=False),
    )
    async def metrics() -> Response:
        try:
            with anyio.fail_after(2):
                await queue_gauges.refresh()
        except Exception as exc:  # the HTTP metrics still help when the database does not
            log.warning("job gauges not refreshed", error=str(exc))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    install_docs(app)
    app.add_middleware(
        BodyGuard,
        max_body_bytes=settings.max_body_bytes,
        exempt_prefixes=("/api/v1/products/imports",),  # a CSV body; the route checks its type
    )
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Tenant", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestObserver, metrics=HttpMetrics(registry))
    return app
