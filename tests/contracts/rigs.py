"""The two sides every contract suite runs against: the SQL adapters and the in-memory fakes.

A rig hands out units of work of one side over two tenants (acme and globex), with a seller
each and a second acme seller. The SQL side needs the session's PostgreSQL (``clean_db``), which
is asked for only when that side runs, so the fake side needs no database at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import pytest

from impextech.catalog.adapters.erp_outbox import ERP_PUSH, JobErpOutbox
from impextech.catalog.adapters.erp_sql import SqlErpSyncUnitOfWork
from impextech.catalog.adapters.sql import SqlCatalogUnitOfWork
from impextech.catalog.adapters.sql_imports import SqlImportUnitOfWork
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.catalog.service.erp_sync import ErpSyncUnitOfWork
from impextech.catalog.service.imports import ImportUnitOfWork
from impextech.catalog.service.ports import Accounts, CatalogUnitOfWork
from impextech.identity.adapters.password_reset_sql import SqlPasswordResetUnitOfWork
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.domain.model import Tenant, TenantStatus, User, UserStatus
from impextech.identity.service.auth import AuthPolicy, AuthService
from impextech.identity.service.facade import Identity
from impextech.identity.service.ports import (
    IdentityUnitOfWork,
    PasswordResetUnitOfWork,
    TenantStore,
)
from impextech.identity.service.tenants import TenantDirectory
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.scheduling import JobScheduling
from impextech.jobs.adapters.sql import SqlJobLedger, SqlJobsUnitOfWork
from impextech.jobs.domain.model import JobKind, JsonObject
from impextech.jobs.service.ports import JobScheduler, JobsUnitOfWork, Started
from impextech.kernel.db import Connection, Database, SqlUnitOfWork
from impextech.kernel.domain.money import Money
from impextech.kernel.domain.principal import Role
from impextech.platform.database import Conninfos
from tests.fakes.catalog import FakeAccounts, FakeCatalog
from tests.fakes.clock import T0, ManualClock
from tests.fakes.identity import FakeAccessTokenCodec, FakeIdentity, FakePasswordHasher
from tests.fakes.jobs import FakeJobs
from tests.support.accounts import user_directory
from tests.support.world import make_tenant

SIDES = ["sql", "fake"]


@dataclass(frozen=True, slots=True)
class Party:
    """A tenant and the ids of its accounts (real rows on the SQL side)."""

    tenant_id: UUID
    admin: UUID
    seller: UUID
    seller2: UUID


def _fake_party() -> Party:
    return Party(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4())


def _sql_party(owner: str, slug: str) -> Party:
    tenant = make_tenant(owner, slug)
    return Party(tenant.id, tenant["admin"].id, tenant["seller"].id, tenant["seller2"].id)


@asynccontextmanager
async def _sql(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Conninfos, Database]]:
    conninfos: Conninfos = request.getfixturevalue("clean_db")
    database = Database.connect(conninfos.app, size=6)
    try:
        yield conninfos, database
    finally:
        await database.dispose()


# -- catalog ------------------------------------------------------------------------------------


@dataclass
class CatalogRig:
    side: str
    acme: Party
    globex: Party
    uow: Callable[[UUID], CatalogUnitOfWork]
    import_uow: Callable[[UUID], ImportUnitOfWork]
    erp_sync_uow: Callable[[UUID], ErpSyncUnitOfWork]


@asynccontextmanager
async def catalog_rig(request: pytest.FixtureRequest, side: str) -> AsyncIterator[CatalogRig]:
    if side == "fake":
        catalog = FakeCatalog()
        yield CatalogRig(
            side,
            _fake_party(),
            _fake_party(),
            catalog.uow,
            catalog.import_uow,
            catalog.erp_sync_uow,
        )
        return
    async with _sql(request) as (conninfos, database):
        scheduling = JobScheduling(ProcrastinateQueue(conninfos.app, [ERP_PUSH]), ManualClock())

        def outbox(conn: Connection, tenant_id: UUID) -> JobErpOutbox:
            return JobErpOutbox(scheduling.in_transaction(conn, tenant_id))

        yield CatalogRig(
            side,
            _sql_party(conninfos.owner, "acme"),
            _sql_party(conninfos.owner, "globex"),
            lambda tenant_id: SqlCatalogUnitOfWork(database, tenant_id, scheduling),
            lambda tenant_id: SqlImportUnitOfWork(database, tenant_id, outbox),
            lambda tenant_id: SqlErpSyncUnitOfWork(database, tenant_id),
        )


def product(party: Party, sku: str, *, minutes: int = 0, **fields: Any) -> Product:
    """An active product of ``party``'s seller, created ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": party.tenant_id,
        "seller_id": party.seller,
        "sku": sku,
        "name": f"Product {sku}",
        "description": "",
        "category": "misc",
        "price": Money(1999, "EUR"),
        "stock": 5,
        "status": ProductStatus.ACTIVE,
        "version": 1,
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return Product(**values)


async def add(rig: CatalogRig, *products: Product) -> None:
    """Products of one tenant, committed."""
    async with rig.uow(products[0].tenant_id) as uow:
        for p in products:
            await uow.products.add(p)
        await uow.commit()


async def stored(rig: CatalogRig, party: Party, product_id: UUID) -> Product | None:
    async with rig.uow(party.tenant_id) as uow:
        return await uow.products.get(product_id)


# -- jobs ---------------------------------------------------------------------------------------

KIND = JobKind("contract.report")
OTHER_KIND = JobKind("contract.export", queue="bulk", priority=3, max_attempts=2)


class SchedulerTransaction(Protocol):
    """A transaction of the caller's, with a scheduler in it; it ends without commit unless
    ``commit`` is called."""

    @property
    def scheduler(self) -> JobScheduler: ...
    async def commit(self) -> None: ...


class JobLedger(Protocol):
    async def start(self, job_id: UUID, now: datetime) -> Started | None: ...
    async def progress(self, job_id: UUID, done: int, total: int | None, now: datetime) -> None: ...
    async def succeed(self, job_id: UUID, result: JsonObject | None, now: datetime) -> None: ...
    async def fail(self, job_id: UUID, error: str, retry_at: datetime, now: datetime) -> None: ...
    async def bury(self, job_id: UUID, error: str, now: datetime) -> None: ...
    async def release(
        self, job_id: UUID, at: datetime, note: str | None, now: datetime, *, refund: bool
    ) -> None: ...


@dataclass
class _Transaction:
    scheduler: JobScheduler
    _commit: Callable[[], Awaitable[None]]

    async def commit(self) -> None:
        await self._commit()


@dataclass
class JobsRig:
    side: str
    acme: Party
    globex: Party
    clock: ManualClock
    uow: Callable[[UUID], JobsUnitOfWork]
    transaction: Callable[[UUID], AbstractAsyncContextManager[SchedulerTransaction]]
    ledger: Callable[[UUID], JobLedger]

    async def enqueue(self, party: Party, kind: JobKind = KIND, **options: str | None) -> UUID:
        """One job of ``party``'s seller, committed in a transaction of its own."""
        async with self.transaction(party.tenant_id) as tx:
            job_id = await tx.scheduler.enqueue(kind, {"n": 1}, created_by=party.seller, **options)
            await tx.commit()
        return job_id


@asynccontextmanager
async def jobs_rig(request: pytest.FixtureRequest, side: str) -> AsyncIterator[JobsRig]:
    clock = ManualClock()
    if side == "fake":
        jobs = FakeJobs(clock, [KIND, OTHER_KIND])

        @asynccontextmanager
        async def fake_transaction(tenant_id: UUID) -> AsyncIterator[SchedulerTransaction]:
            tx = jobs.db.begin()
            try:
                yield _Transaction(jobs.in_transaction(tx, tenant_id), tx.commit)
            finally:
                await tx.rollback()

        yield JobsRig(
            side, _fake_party(), _fake_party(), clock, jobs.uow, fake_transaction, jobs.ledger
        )
        return
    async with _sql(request) as (conninfos, database):
        queue = ProcrastinateQueue(conninfos.app, [KIND, OTHER_KIND])
        scheduling = JobScheduling(queue, clock)

        @asynccontextmanager
        async def sql_transaction(tenant_id: UUID) -> AsyncIterator[SchedulerTransaction]:
            async with SqlUnitOfWork(database, tenant_id) as uow:
                yield _Transaction(scheduling.in_transaction(uow.conn, tenant_id), uow.commit)

        def ledger(tenant_id: UUID) -> JobLedger:
            return SqlJobLedger(database, tenant_id)

        yield JobsRig(
            side,
            _sql_party(conninfos.owner, "acme"),
            _sql_party(conninfos.owner, "globex"),
            clock,
            lambda tenant_id: SqlJobsUnitOfWork(database, tenant_id, queue),
            sql_transaction,
            ledger,
        )


# -- identity -----------------------------------------------------------------------------------


@dataclass
class IdentityRig:
    """Two empty marketplaces (no accounts yet: each test adds the users it needs)."""

    side: str
    acme: Tenant
    globex: Tenant
    uow: Callable[[UUID], IdentityUnitOfWork]
    reset_uow: Callable[[UUID], PasswordResetUnitOfWork]
    # Writes need the schema owner's connection on the SQL side, as the operator's commands do.
    tenants: TenantStore
    # The catalog's view of accounts. The SQL side reads the users a test added; the catalog's
    # fake knows nothing by itself and is told the same users.
    accounts: Callable[[Sequence[User]], Accounts]


def _marketplace(slug: str) -> Tenant:
    return Tenant(uuid.uuid4(), slug, slug.title(), TenantStatus.ACTIVE, T0)


def _fake_accounts(users: Sequence[User]) -> Accounts:
    roles = {u.id: (u.role if u.is_active else None) for u in users}
    return FakeAccounts(roles, homes={u.id: u.tenant_id for u in users})


@asynccontextmanager
async def identity_rig(request: pytest.FixtureRequest, side: str) -> AsyncIterator[IdentityRig]:
    acme, globex = _marketplace("acme"), _marketplace("globex")
    if side == "fake":
        identity = FakeIdentity()
        rig = IdentityRig(
            side, acme, globex, identity.uow, identity.reset_uow, identity.tenants, _fake_accounts
        )
        await rig.tenants.add(acme)
        await rig.tenants.add(globex)
        yield rig
        return
    async with _sql(request) as (conninfos, database):
        owner = Database.connect(conninfos.owner, size=2)
        try:
            registry = SqlTenantStore(owner)
            clock = ManualClock()

            def uow(tenant_id: UUID) -> SqlIdentityUnitOfWork:
                return SqlIdentityUnitOfWork(database, tenant_id)

            auth = AuthService(
                uow, FakePasswordHasher(), FakeAccessTokenCodec(clock), clock, AuthPolicy()
            )
            facade = Identity(
                auth, TenantDirectory(registry), registry, user_directory(database), ()
            )
            rig = IdentityRig(
                side,
                acme,
                globex,
                uow,
                lambda tenant_id: SqlPasswordResetUnitOfWork(
                    database, tenant_id, JobScheduling(ProcrastinateQueue(conninfos.app), clock)
                ),
                registry,
                lambda users: facade,
            )
            await rig.tenants.add(acme)
            await rig.tenants.add(globex)
            yield rig
        finally:
            await owner.dispose()


def user(
    tenant: Tenant,
    email: str,
    *,
    role: Role = Role.SHOPPER,
    minutes: int = 0,
    **fields: Any,
) -> User:
    """An active user of ``tenant``, created ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant_id": tenant.id,
        "email": email,
        "display_name": email.partition("@")[0].title(),
        "role": role,
        "status": UserStatus.ACTIVE,
        "password_hash": f"hash-of-{email}",
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return User(**values)


async def add_users(rig: IdentityRig, *users: User) -> None:
    """Users of one tenant, committed."""
    async with rig.uow(users[0].tenant_id) as uow:
        for u in users:
            await uow.users.add(u)
        await uow.commit()
