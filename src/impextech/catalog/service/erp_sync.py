"""ERP sync: push a product's current state to the tenant's ERP, once per version.

The product row is the source of truth and ``products.erp_synced_version`` remembers the newest
version the ERP acknowledged, so a push is a trigger that is safe to run twice: it reads the
product when it runs, sends nothing when the ERP already has that version, and sends each
version with the idempotency key ``{tenant_id}:{product_id}:{version}`` so that a retry after a
lost answer is applied once by the ERP.

No database connection is held while the ERP is called: the read and the acknowledgement are two
short transactions around the call, so a slow ERP cannot exhaust the pool.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from impextech.catalog.domain.model import Product
from impextech.kernel.domain.errors import Unavailable, UpstreamFailed
from impextech.kernel.domain.uow import UnitOfWork

# -- the port to the ERP and its errors ---------------------------------------------------------


class ErpError(UpstreamFailed):
    """A push did not reach the ERP."""

    code = "erp-failed"
    title = "The ERP did not take the change"


class ErpUnavailable(Unavailable, ErpError):
    """Not called at all: the ERP's breaker is open. Come back at ``retry_at``."""

    code = "erp-unavailable"
    title = "The ERP is unavailable"

    def __init__(self, retry_at: datetime, detail: str | None = None) -> None:
        super().__init__(detail or f"the ERP's circuit is open until {retry_at.isoformat()}")
        self.retry_at = retry_at


class ErpTransientError(ErpError):
    """Timed out, connection failed, 5xx or 429: the same push may work later."""

    code = "erp-transient-error"


class ErpRejected(ErpError):
    """The ERP refused the push (4xx other than 429): sending it again cannot help."""

    code = "erp-rejected"
    title = "The ERP refused the change"


class ErpGateway(Protocol):
    """The tenant's ERP. Raises ``ErpUnavailable``, ``ErpTransientError`` or ``ErpRejected``."""

    async def push_product(self, product: Product, idempotency_key: str) -> None:
        """Upsert ``product`` (archived ones too) as the ERP's record for it."""
        ...


# -- the store ----------------------------------------------------------------------------------


class ErpSyncStore(Protocol):
    async def get_with_synced_version(self, product_id: UUID) -> tuple[Product, int | None] | None:
        """The product in any status, and the version the ERP last acknowledged (None: never)."""
        ...

    async def record_synced(self, product_id: UUID, version: int) -> None:
        """Remember that the ERP has ``version``; never moves the mark backwards."""
        ...


class ErpSyncUnitOfWork(UnitOfWork, Protocol):
    @property
    def erp_sync(self) -> ErpSyncStore: ...


class ErpSyncUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> ErpSyncUnitOfWork: ...


# -- the use case -------------------------------------------------------------------------------


class PushOutcome(enum.StrEnum):
    PUSHED = "pushed"
    ALREADY_SYNCED = "already_synced"  # the ERP acknowledged this version (or a newer one)
    NO_ERP = "no_erp"  # no ERP configured: nothing to do, and not an error
    NO_PRODUCT = "no_product"  # nothing to push (not in this tenant)


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    version: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome.value, "version": self.version}


def idempotency_key(product: Product) -> str:
    return f"{product.tenant_id}:{product.id}:{product.version}"


class ErpSync:
    def __init__(self, uow: ErpSyncUnitOfWorkFactory, gateway: ErpGateway | None) -> None:
        self._uow = uow
        self._gateway = gateway

    async def push_to_erp(self, tenant_id: UUID, product_id: UUID) -> PushResult:
        if self._gateway is None:
            return PushResult(PushOutcome.NO_ERP)
        async with self._uow(tenant_id) as uow:
            found = await uow.erp_sync.get_with_synced_version(product_id)
        if found is None:
            return PushResult(PushOutcome.NO_PRODUCT)
        product, synced = found
        if synced is not None and synced >= product.version:
            return PushResult(PushOutcome.ALREADY_SYNCED, product.version)
        await self._gateway.push_product(product, idempotency_key(product))
        async with self._uow(tenant_id) as uow:
            await uow.erp_sync.record_synced(product.id, product.version)
            await uow.commit()
        return PushResult(PushOutcome.PUSHED, product.version)
