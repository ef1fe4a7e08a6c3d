"""The import use cases over hand-written fakes of their ports: batching, commits, progress."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from uuid import UUID

import pytest

from impextech.catalog.domain.imports import COLUMNS, ImportFileInvalid, ImportFileMalformed
from impextech.catalog.domain.model import Product
from impextech.catalog.service.imports import ImportOrder, ProductImports
from impextech.kernel.domain.errors import Forbidden
from impextech.kernel.domain.principal import Principal, Role

pytestmark = pytest.mark.anyio

TENANT = uuid.uuid4()
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
HEADER = ",".join(COLUMNS)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass
class World:
    """The committed state the fakes share: products by SKU, announcements, queued jobs."""

    products: dict[str, Product] = field(default_factory=dict)
    announced: list[UUID] = field(default_factory=list)
    jobs: list[tuple[dict[str, str], UUID]] = field(default_factory=list)
    commits: int = 0
    fail_on_insert_of: str | None = None


class FakeStore:
    def __init__(self, pending: dict[str, Product], world: World) -> None:
        self._pending = pending
        self._world = world

    async def lock_by_sku(self, skus: Sequence[str]) -> dict[str, Product]:
        return {s: self._world.products[s] for s in skus if s in self._world.products}

    async def insert(self, products: Sequence[Product]) -> None:
        for p in products:
            if p.sku == self._world.fail_on_insert_of:
                raise RuntimeError("lost the connection")
            self._pending[p.sku] = p

    async def update(self, products: Sequence[Product]) -> None:
        for p in products:
            self._pending[p.sku] = p


class FakeChanges:
    def __init__(self, pending: list[UUID]) -> None:
        self._pending = pending

    async def products_changed(self, product_ids: Sequence[UUID]) -> None:
        self._pending.extend(product_ids)


class FakeImportUow:
    def __init__(self, world: World) -> None:
        self._world = world
        self._products: dict[str, Product] = {}
        self._announced: list[UUID] = []
        self.products = FakeStore(self._products, world)
        self.changes = FakeChanges(self._announced)

    async def __aenter__(self) -> FakeImportUow:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._products.clear()
        self._announced.clear()

    async def commit(self) -> None:
        self._world.products.update(self._products)
        self._world.announced.extend(self._announced)
        self._world.commits += 1


class FakeJobs:
    def __init__(self, pending: list[tuple[dict[str, str], UUID]]) -> None:
        self._pending = pending
        self.job_id = uuid.uuid4()

    async def enqueue_import(self, payload: dict[str, str], created_by: UUID) -> UUID:
        self._pending.append((payload, created_by))
        return self.job_id


class FakeSubmitUow:
    def __init__(self, world: World) -> None:
        self._world = world
        self._pending: list[tuple[dict[str, str], UUID]] = []
        self.jobs = FakeJobs(self._pending)

    async def __aenter__(self) -> FakeSubmitUow:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()

    async def commit(self) -> None:
        self._world.jobs.extend(self._pending)
        self._world.commits += 1


def service(world: World, batch_size: int = 2) -> ProductImports:
    return ProductImports(
        lambda tenant_id: FakeSubmitUow(world),
        lambda tenant_id: FakeImportUow(world),
        FixedClock(),
        batch_size=batch_size,
    )


def principal(role: Role) -> Principal:
    return Principal(TENANT, uuid.uuid4(), role, uuid.uuid4())


def rows(*skus: str) -> str:
    return HEADER + "\n" + "".join(f"{s},Name {s},,misc,100,EUR,1\n" for s in skus)


@pytest.mark.parametrize("role", [Role.SELLER, Role.ADMIN])
async def test_a_seller_or_admin_submission_queues_one_job_with_the_file(role: Role) -> None:
    world = World()
    who = principal(role)
    text = rows("A-1")
    await service(world).submit(who, text.encode())
    assert world.jobs == [
        (
            {"csv": text, "importer_id": str(who.user_id), "submitted_at": NOW.isoformat()},
            who.user_id,
        )
    ]
    order = ImportOrder.from_payload(world.jobs[0][0])
    assert order == ImportOrder(text, who.user_id, NOW)


@pytest.mark.parametrize(
    ("role", "body", "error"),
    [
        (Role.SHOPPER, rows("A-1").encode(), Forbidden),
        (Role.SHOPPER, b"", Forbidden),  # the role is checked before the body
        (Role.SELLER, b"", ImportFileMalformed),
        (Role.SELLER, b"sku\nA\n", ImportFileInvalid),
    ],
)
async def test_a_refused_submission_queues_nothing(
    role: Role, body: bytes, error: type[Exception]
) -> None:
    world = World()
    with pytest.raises(error):
        await service(world).submit(principal(role), body)
    assert world.jobs == []
    assert world.commits == 0


async def test_valid_rows_are_written_in_batches_with_progress_after_each() -> None:
    world = World()
    importer = uuid.uuid4()
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    text = rows("A-1", "A-2", "A-3", "A-4", "A-5") + "BAD,x,,misc,1.5,EUR,1\n"
    report = await service(world).run(TENANT, ImportOrder(text, importer, NOW), progress)
    assert seen == [(1, 6), (3, 6), (5, 6), (6, 6)]
    assert world.commits == 3
    assert sorted(world.products) == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    assert {p.seller_id for p in world.products.values()} == {importer}
    assert sorted(world.announced) == sorted(p.id for p in world.products.values())
    assert (report.rows, report.created, report.updated, report.unchanged) == (6, 5, 0, 0)
    assert [(r.line, r.sku) for r in report.rejected_rows] == [(7, "BAD")]


async def test_a_failed_batch_counts_nothing_and_a_rerun_reports_the_whole_import() -> None:
    world = World(fail_on_insert_of="A-3")
    importer = uuid.uuid4()
    order = ImportOrder(rows("A-1", "A-2", "A-3", "A-4"), importer, NOW)

    async def progress(done: int, total: int) -> None:
        return None

    with pytest.raises(RuntimeError):
        await service(world).run(TENANT, order, progress)
    assert sorted(world.products) == ["A-1", "A-2"]
    assert len(world.announced) == 2

    world.fail_on_insert_of = None
    report = await service(world).run(TENANT, order, progress)
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    assert sorted(world.products) == ["A-1", "A-2", "A-3", "A-4"]
    assert len(world.announced) == 4  # the first two were announced once, with their write

    later = ImportOrder(order.text, importer, datetime(2026, 11, 25, tzinfo=UTC))
    again = await service(world).run(TENANT, later, progress)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert len(world.announced) == 4


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"csv": "x", "importer_id": str(uuid.uuid4())},
        {"csv": "x", "importer_id": "not-a-uuid", "submitted_at": NOW.isoformat()},
        {"csv": "x", "importer_id": str(uuid.uuid4()), "submitted_at": "2026-11-24T03:00:00"},
        {"csv": 1, "importer_id": str(uuid.uuid4()), "submitted_at": NOW.isoformat()},
    ],
)
def test_a_payload_not_made_by_submit_is_refused(payload: object) -> None:
    with pytest.raises(ValueError, match=r".+"):
        ImportOrder.from_payload(payload)
