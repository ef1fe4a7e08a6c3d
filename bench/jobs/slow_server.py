"""The web app as `impextech serve` builds it, plus the slow-partner benchmark's baseline route.

    .venv/bin/python bench/jobs/slow_server.py --port N     (settings from the environment)

``POST /bench/products-inline`` is the way *not* to do it, kept only here: it creates the product
exactly like ``POST /api/v1/products`` (same service, same transaction, which also queues the ERP
push job), then calls the ERP inside the request with httpx, with the same timeouts and connection
limit as the platform's ERP gateway (``IMPEXTECH_ERP_TIMEOUT`` for read, write and pool waits,
3 s to connect, 50 connections), and answers only when the ERP has. An ERP timeout (including a
wait for a free connection) answers 504, any other transport error 502, an ERP error status 502.
``GET /bench/stats`` counts the outcomes of those ERP calls by exception class or status.
"""

from __future__ import annotations

import argparse
from collections import Counter

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from impextech.catalog.adapters.http import ProductIn, catalog_web
from impextech.catalog.service.products import NewProduct
from impextech.catalog.settings import CatalogSettings
from impextech.kernel.callers import CurrentPrincipal
from impextech.platform import database as db
from impextech.platform.app import create_app
from impextech.platform.logs import configure_logging
from impextech.platform.settings import Settings

GATEWAY_CONNECTIONS = 50  # HttpErpGateway's default max_connections
GATEWAY_CONNECT_SECONDS = 3.0  # erp_http.MAX_CONNECT_SECONDS


def build(settings: Settings, app_conninfo: str) -> tuple[FastAPI, Counter[str]]:
    app = create_app(settings, app_conninfo)
    erp = settings.section(CatalogSettings)
    if not erp.erp_url:
        raise SystemExit("slow_server: IMPEXTECH_ERP_URL must name the sandbox ERP")
    base = erp.erp_url.rstrip("/")
    timeout = erp.erp_timeout
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=min(timeout, GATEWAY_CONNECT_SECONDS), read=timeout, write=timeout, pool=timeout
        ),
        limits=httpx.Limits(max_connections=GATEWAY_CONNECTIONS, max_keepalive_connections=10),
    )
    outcomes: Counter[str] = Counter()

    async def create_inline(
        request: Request, body: ProductIn, principal: CurrentPrincipal
    ) -> JSONResponse:
        product = await catalog_web(request).service.create(
            principal,
            NewProduct(
                sku=body.sku,
                name=body.name,
                description=body.description,
                category=body.category,
                price=body.price.to_money(),
                stock=body.stock,
            ),
        )
        url = f"{base}/accounts/{product.tenant_id}/products/{product.id}"
        document = {"id": str(product.id), "sku": product.sku, "version": product.version}
        key = f"{product.tenant_id}:{product.id}:{product.version}"
        try:
            answer = await client.put(url, json=document, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            outcomes[type(exc).__name__] += 1
            return JSONResponse({"error": type(exc).__name__}, status_code=504)
        except httpx.TransportError as exc:
            outcomes[type(exc).__name__] += 1
            return JSONResponse({"error": type(exc).__name__}, status_code=502)
        outcomes[f"HTTP {answer.status_code}"] += 1
        if answer.status_code >= 300:
            return JSONResponse({"error": f"ERP {answer.status_code}"}, status_code=502)
        return JSONResponse({"id": str(product.id)}, status_code=201)

    async def stats() -> JSONResponse:
        return JSONResponse(dict(outcomes))

    app.add_api_route("/bench/products-inline", create_inline, methods=["POST"])
    app.add_api_route("/bench/stats", stats, methods=["GET"])
    return app, outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    settings = Settings.from_env()
    configure_logging(settings.platform.log_format, settings.platform.log_level)
    infos = db.require_current(settings)
    app, _ = build(settings, infos.app)
    # The same server settings as `impextech serve` (platform.cli._serve): one process.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
