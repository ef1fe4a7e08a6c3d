"""The import use cases over hand-written fakes of their ports: batching, commits, progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from impextech.catalog.domain.imports import (
    COLUMNS,
    ImporterNotAllowed,
    ImportFileInvalid,
    ImportFileMalformed,
)
from impextech.catalog.service.imports import ImportOrder, ProductImports
from impextech.kernel.domain.errors import Forbidden
from impextech.kernel.domain.principal import Principal, Role
from tests.fakes.catalog import FakeAccounts, FakeCatalog, QueuedImport
from tests.fakes.clock import ManualClock

pytestmark = pytest.mark.anyio

TENANT = uuid.uuid4()
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
HEADER = ",".join(COLUMNS)


def service(
    catalog: FakeCatalog, batch_size: int = 2, accounts: FakeAccounts | None = None
) -> ProductImports:
    return ProductImports(
        catalog.submit_uow,
        catalog.import_uow,
        ManualClock(NOW),
        accounts or FakeAccounts(),
        batch_size=batch_size,
    )


def principal(role: Role) -> Principal:
    return Principal(TENANT, uuid.uuid4(), role, uuid.uuid4())


def rows(*skus: str) -> str:
    return HEADER + "\n" + "".join(f"{s},Name {s},,misc,100,EUR,1\n" for s in skus)


@pytest.mark.parametrize("role", [Role.SELLER, Role.ADMIN])
async def test_a_seller_or_admin_submission_queues_one_job_with_the_file(role: Role) -> None:
    catalog = FakeCatalog()
    who = principal(role)
    text = rows("A-1")
    job_id = await service(catalog).submit(who, text.encode())
    payload = {"csv": text, "importer_id": str(who.user_id), "submitted_at": NOW.isoformat()}
    assert catalog.queued_imports() == [QueuedImport(TENANT, job_id, payload, who.user_id)]
    order = ImportOrder.from_payload(payload)
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
    catalog = FakeCatalog()
    with pytest.raises(error):
        await service(catalog).submit(principal(role), body)
    assert catalog.queued_imports() == []
    assert catalog.commits == 0


async def test_valid_rows_are_written_in_batches_with_progress_after_each() -> None:
    catalog = FakeCatalog()
    importer = uuid.uuid4()
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    text = rows("A-1", "A-2", "A-3", "A-4", "A-5") + "BAD,x,,misc,1.5,EUR,1\n"
    report = await service(catalog).run(TENANT, ImportOrder(text, importer, NOW), progress)
    assert seen == [(1, 6), (3, 6), (5, 6), (6, 6)]
    assert catalog.commits == 3
    products = catalog.products(TENANT)
    assert sorted(products) == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    assert {p.seller_id for p in products.values()} == {importer}
    assert catalog.announced(TENANT) == [products[s].id for s in sorted(products)]
    assert (report.rows, report.created, report.updated, report.unchanged) == (6, 5, 0, 0)
    assert [(r.line, r.sku) for r in report.rejected_rows] == [(7, "BAD")]


async def test_a_failed_batch_counts_nothing_and_a_rerun_reports_the_whole_import() -> None:
    catalog = FakeCatalog()
    catalog.fail_on_insert_of = "A-3"
    importer = uuid.uuid4()
    order = ImportOrder(rows("A-1", "A-2", "A-3", "A-4"), importer, NOW)

    async def progress(done: int, total: int) -> None:
        return None

    with pytest.raises(ConnectionError):
        await service(catalog).run(TENANT, order, progress)
    assert sorted(catalog.products(TENANT)) == ["A-1", "A-2"]
    assert len(catalog.announced(TENANT)) == 2

    catalog.fail_on_insert_of = None
    report = await service(catalog).run(TENANT, order, progress)
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    products = catalog.products(TENANT)
    assert sorted(products) == ["A-1", "A-2", "A-3", "A-4"]
    # The first two were announced once, with their write.
    assert catalog.announced(TENANT) == [products[s].id for s in sorted(products)]

    later = ImportOrder(order.text, importer, datetime(2026, 11, 25, tzinfo=UTC))
    again = await service(catalog).run(TENANT, later, progress)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert len(catalog.announced(TENANT)) == 4


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


async def ignore_progress(done: int, total: int) -> None:
    return None


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (None, "is no longer active"),
        (Role.SHOPPER, "is now a shopper; only sellers and admins import products"),
    ],
)
async def test_a_job_of_an_importer_deactivated_or_demoted_since_writes_nothing(
    now: Role | None, message: str
) -> None:
    catalog = FakeCatalog()
    importer = uuid.uuid4()
    accounts = FakeAccounts({importer: now})
    order = ImportOrder(rows("A-1", "A-2", "A-3"), importer, NOW)
    with pytest.raises(ImporterNotAllowed, match=message):
        await service(catalog, accounts=accounts).run(TENANT, order, ignore_progress)
    # Nothing written, announced or committed.
    assert (catalog.products(TENANT), catalog.announced(TENANT), catalog.commits) == ({}, [], 0)
    assert accounts.asked == [(TENANT, importer)]


async def test_an_admin_importer_may_still_run_their_job() -> None:
    catalog = FakeCatalog()
    importer = uuid.uuid4()
    accounts = FakeAccounts({importer: Role.ADMIN})
    order = ImportOrder(rows("A-1"), importer, NOW)
    report = await service(catalog, accounts=accounts).run(TENANT, order, ignore_progress)
    assert (report.created, sorted(catalog.products(TENANT))) == (1, ["A-1"])


async def test_an_importer_deactivated_between_batches_stops_the_next_batch() -> None:
    catalog = FakeCatalog()
    importer = uuid.uuid4()
    accounts = FakeAccounts()
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:  # the first batch of two is committed; an admin deactivates the seller
            accounts.roles[importer] = None

    order = ImportOrder(rows("A-1", "A-2", "A-3", "A-4"), importer, NOW)
    with pytest.raises(ImporterNotAllowed):
        await service(catalog, accounts=accounts).run(TENANT, order, progress)
    assert sorted(catalog.products(TENANT)) == ["A-1", "A-2"]
    assert catalog.commits == 1
    assert seen == [(0, 4), (2, 4)]
    # Asked before reading the file and before the second batch (the first was just cleared).
    assert accounts.asked == [(TENANT, importer), (TENANT, importer)]
