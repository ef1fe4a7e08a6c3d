"""Bulk product import: submit a CSV file (checked at once, queued as a job), then run it.

The request only checks what can be checked cheaply and refuses a broken file before anything is
queued; the job validates every row and writes the valid ones in batches, one transaction per
batch. Each batch is an upsert by SKU with the import's submission time as its stamp, so running
the job again (after a crash between batches) changes nothing twice and reports the same counts.

A job runs long after its request, and an admin may retry it days later: the importer's account
is asked again (active, still a seller or admin) before the job reads the file and before every
later batch, so a deactivated or demoted importer's job writes nothing more and dies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from impextech.catalog.domain.imports import (
    Applied,
    ImporterNotAllowed,
    ImportRow,
    RejectedRow,
    RowOutcome,
    apply_row,
    decode,
    read_import,
    validate_rows,
)
from impextech.catalog.domain.model import Product
from impextech.catalog.service.ports import Accounts
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import Forbidden
from impextech.kernel.domain.principal import Principal, Role
from impextech.kernel.domain.uow import UnitOfWork

BATCH_SIZE = 500


class ImportProductStore(Protocol):
    """The tenant's products as an import sees them, inside the batch's transaction."""

    async def lock_by_sku(self, skus: Sequence[str]) -> dict[str, Product]:
        """The products with these SKUs, locked until the transaction ends."""
        ...

    async def insert(self, products: Sequence[Product]) -> None: ...
    async def update(self, products: Sequence[Product]) -> None:
        """Write each product over the stored row (the rows are locked by ``lock_by_sku``)."""
        ...


class ChangedProducts(Protocol):
    """Where a written product is announced (the ERP outbox), in the same transaction."""

    async def products_changed(self, product_ids: Sequence[UUID]) -> None: ...


class ImportUnitOfWork(UnitOfWork, Protocol):
    @property
    def products(self) -> ImportProductStore: ...
    @property
    def changes(self) -> ChangedProducts: ...


class ImportUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> ImportUnitOfWork: ...


class ImportJobs(Protocol):
    """Queues an import job in the caller's transaction."""

    async def enqueue_import(self, payload: dict[str, str], created_by: UUID) -> UUID: ...


class SubmitUnitOfWork(UnitOfWork, Protocol):
    @property
    def jobs(self) -> ImportJobs: ...


class SubmitUnitOfWorkFactory(Protocol):
    def __call__(self, tenant_id: UUID) -> SubmitUnitOfWork: ...


@dataclass(frozen=True, slots=True)
class ImportOrder:
    """What the job needs; its payload form survives the queue as JSON."""

    text: str
    importer_id: UUID
    submitted_at: datetime

    def to_payload(self) -> dict[str, str]:
        return {
            "csv": self.text,
            "importer_id": str(self.importer_id),
            "submitted_at": self.submitted_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, payload: object) -> ImportOrder:
        """Raises ValueError when the payload is not one ``to_payload`` made."""
        if not isinstance(payload, dict):
            raise ValueError("the payload is not an object")
        text, importer, submitted = (payload.get(k) for k in ("csv", "importer_id", "submitted_at"))
        if not (isinstance(text, str) and isinstance(importer, str) and isinstance(submitted, str)):
            raise ValueError("the payload lacks csv, importer_id or submitted_at")
        at = datetime.fromisoformat(submitted)
        if at.tzinfo is None:
            raise ValueError("submitted_at has no time zone")
        return cls(text, UUID(importer), at)


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_rows: list[RejectedRow] = field(default_factory=list)

    def count(self, outcome: RowOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def to_json(self) -> dict[str, object]:
        rejected = sorted(self.rejected_rows, key=lambda r: r.line)
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(rejected),
            "rejected_rows": [
                {
                    "line": r.line,
                    "sku": r.sku,
                    "reasons": [{"column": x.column, "message": x.message} for x in r.reasons],
                }
                for r in rejected
            ],
        }


Progress = Callable[[int, int], Awaitable[None]]


class ProductImports:
    def __init__(
        self,
        submit_uow: SubmitUnitOfWorkFactory,
        import_uow: ImportUnitOfWorkFactory,
        clock: Clock,
        accounts: Accounts,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._submit_uow = submit_uow
        self._import_uow = import_uow
        self._clock = clock
        self._accounts = accounts
        self._batch_size = batch_size

    async def submit(self, principal: Principal, body: bytes) -> UUID:
        """Check the file's encoding, syntax, header and size, then queue it; the job's id."""
        if principal.role not in (Role.SELLER, Role.ADMIN):
            raise Forbidden("only sellers and admins import products")
        # A 1 MiB file is tens of milliseconds of parsing: in a thread, so every other request
        # this process serves keeps its event loop meanwhile.
        text = await asyncio.to_thread(_readable, body)
        order = ImportOrder(text, principal.user_id, self._clock.now())
        async with self._submit_uow(principal.tenant_id) as uow:
            job_id = await uow.jobs.enqueue_import(order.to_payload(), principal.user_id)
            await uow.commit()
        return job_id

    async def run(self, tenant_id: UUID, order: ImportOrder, progress: Progress) -> ImportReport:
        """Validate every row, then upsert the valid ones batch by batch."""
        await self._require_importer(tenant_id, order.importer_id)
        # Off the event loop: the worker's urgent jobs share it, and 10,000 rows take ~0.1 s.
        checked = await asyncio.to_thread(lambda: validate_rows(read_import(order.text)))
        report = ImportReport(rows=checked.total, rejected_rows=list(checked.rejected))
        done = len(checked.rejected)
        await progress(done, checked.total)
        rows = checked.rows
        for start in range(0, len(rows), self._batch_size):
            batch = rows[start : start + self._batch_size]
            if start:  # the first batch was cleared just above
                await self._require_importer(tenant_id, order.importer_id)
            await self._batch(tenant_id, order, batch, report)
            done += len(batch)
            await progress(done, checked.total)
        return report

    async def _require_importer(self, tenant_id: UUID, importer_id: UUID) -> None:
        role = await self._accounts.active_role(tenant_id, importer_id)
        if role is None:
            raise ImporterNotAllowed(
                f"the importer's account ({importer_id}) is no longer active; nothing more"
                " of this import is written"
            )
        if role not in (Role.SELLER, Role.ADMIN):
            raise ImporterNotAllowed(
                f"the importer ({importer_id}) is now a {role.value}; only sellers and admins"
                " import products, so nothing more of this import is written"
            )

    async def _batch(
        self, tenant_id: UUID, order: ImportOrder, batch: Sequence[ImportRow], report: ImportReport
    ) -> None:
        outcomes: list[Applied | RejectedRow] = []
        async with self._import_uow(tenant_id) as uow:
            existing = await uow.products.lock_by_sku([row.sku for row in batch])
            for row in batch:
                outcomes.append(
                    apply_row(
                        row,
                        existing.get(row.sku),
                        tenant_id=tenant_id,
                        importer_id=order.importer_id,
                        as_of=order.submitted_at,
                        new_id=uuid.uuid4,
                    )
                )
            applied = [o for o in outcomes if isinstance(o, Applied)]
            created = [a.write for a in applied if a.write and a.outcome is RowOutcome.CREATED]
            updated = [a.write for a in applied if a.write and a.outcome is RowOutcome.UPDATED]
            await uow.products.insert(created)
            await uow.products.update(updated)
            await uow.changes.products_changed([p.id for p in (*created, *updated)])
            await uow.commit()
        # Counted only once the batch is committed: a failed batch leaves the report untouched.
        for outcome in outcomes:
            if isinstance(outcome, RejectedRow):
                report.rejected_rows.append(outcome)
            else:
                report.count(outcome.outcome)


def _readable(body: bytes) -> str:
    """The file's text, once its encoding, syntax, header and size are known to be sound."""
    text = decode(body)
    read_import(text)
    return text
