"""The tenant's ERP over HTTP: explicit timeouts, and a circuit breaker around every call.

``PUT {base}/accounts/{tenant_id}/products/{product_id}`` with the product as JSON and an
``Idempotency-Key`` (the contract `impextech sandbox erp` plays; docs/sandbox.md).

What counts against the ERP (and towards opening the breaker): transport errors, timeouts, 5xx
and 429. Any other 4xx is the ERP refusing this one push: a permanent error that says the ERP
is up, so it counts as a success for the breaker and is never retried. While the breaker is
open no request is sent at all; the caller gets ``ErpUnavailable`` with the time to come back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog

from impextech.catalog.domain.model import Product
from impextech.catalog.service.erp_sync import ErpRejected, ErpTransientError, ErpUnavailable
from impextech.resilience.api import BreakerState, CircuitBreaker, CircuitOpen, Ticket

log = structlog.get_logger("impextech.erp")

MAX_CONNECT_SECONDS = 3.0


def erp_document(product: Product) -> dict[str, Any]:
    return {
        "id": str(product.id),
        "seller_id": str(product.seller_id),
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price": {"amount": product.price.amount, "currency": product.price.currency},
        "stock": product.stock,
        "status": product.status.value,
        "version": product.version,
        "updated_at": product.updated_at.isoformat(),
    }


class HttpErpGateway:
    """One per process: it owns a connection pool and the breaker all ERP jobs share."""

    def __init__(
        self,
        base_url: str,
        breaker: CircuitBreaker,
        *,
        timeout: float,
        max_connections: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._breaker = breaker
        # The whole call must fit in ``timeout``; each phase is bounded on its own as well, so
        # a stuck connect or a pool wait fails fast instead of eating the budget silently.
        self._deadline = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=min(timeout, MAX_CONNECT_SECONDS), read=timeout, write=timeout, pool=timeout
            ),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=10),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        await self._client.aclose()

    async def push_product(self, product: Product, idempotency_key: str) -> None:
        try:
            ticket = self._breaker.admit()
        except CircuitOpen as exc:
            raise ErpUnavailable(exc.retry_at) from None
        url = f"{self._base}/accounts/{product.tenant_id}/products/{product.id}"
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._client.put(
                    url, json=erp_document(product), headers={"Idempotency-Key": idempotency_key}
                )
        except (httpx.RequestError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError | httpx.TimeoutException):
                reason = f"timed out after {self._deadline:g} s ({type(exc).__name__})"
            else:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._failed(ticket, reason)
            raise ErpTransientError(f"ERP call failed ({reason})") from exc
        except BaseException:
            # Cancelled (the job's own time limit, a draining worker): no verdict on the ERP.
            self._breaker.abandoned(ticket)
            raise
        status = response.status_code
        if status >= 500 or status == 429:
            self._failed(ticket, f"HTTP {status}")
            raise ErpTransientError(f"the ERP answered {status}")
        self._succeeded(ticket)
        if not 200 <= status < 300:
            raise ErpRejected(f"the ERP refused the push with {status}: {_excerpt(response)}")

    def _failed(self, ticket: Ticket, reason: str) -> None:
        opened = self._breaker.snapshot().opened_count
        self._breaker.failed(ticket)
        after = self._breaker.snapshot()
        if after.opened_count != opened:
            log.warning("erp breaker opened", reason=reason, retry_at=str(after.retry_at))

    def _succeeded(self, ticket: Ticket) -> None:
        self._breaker.succeeded(ticket)
        if ticket.probe and self._breaker.state is BreakerState.CLOSED:
            log.info("erp breaker closed")


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
