"""Periodic jobs: a cron tick fans out one job per active tenant, never piling up."""

from __future__ import annotations

import asyncio
from uuid import UUID

import psycopg
import pytest

from impextech.catalog.adapters.erp_outbox import ERP_PUSH, ERP_RECONCILE, erp_reconcile_handler
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.api import JobContext, JobKind, JobScheduling, JsonObject
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform.database import Conninfos
from tests.support.jobs import enqueue, job_row, make_runtime, running_worker, wait_for
from tests.support.world import insert_product, make_tenant

pytestmark = pytest.mark.anyio


async def active_tenant_ids(database: Database) -> list[UUID]:
    # What identity's roster answers in a real worker: the active marketplaces.
    async with database.transaction(None) as conn:
        cur = await conn.execute("SELECT id FROM tenants WHERE status = 'active' ORDER BY id")
        return [row.id for row in await cur.fetchall()]


def _jobs(owner: str, tenant: UUID, kind: str) -> list[tuple[str, object]]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        rows = conn.execute(
            "SELECT state, payload FROM jobs WHERE kind = %s ORDER BY created_at", (kind,)
        ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


async def test_a_cron_tick_runs_the_kind_once_for_every_active_tenant(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    globex = make_tenant(clean_db.owner, "globex")
    suspended = make_tenant(clean_db.owner, "initech")
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("UPDATE tenants SET status = 'suspended' WHERE id = %s", (suspended.id,))
    kind = JobKind("test.nightly", max_attempts=1)
    seen: list[UUID] = []

    async def handler(ctx: JobContext) -> JsonObject:
        seen.append(ctx.tenant_id)
        return {"tick": ctx.payload["tick"]}

    runtime = make_runtime(clean_db.app, {kind: handler})
    database = Database.connect(clean_db.app, size=1)
    runtime.every(kind, "* * * * * *", lambda: active_tenant_ids(database))  # every second
    try:
        async with running_worker(runtime):
            for _ in range(100):
                if acme.id in seen and globex.id in seen:
                    break
                await asyncio.sleep(0.1)
    finally:
        await database.dispose()
    assert acme.id in seen
    assert globex.id in seen
    assert suspended.id not in seen
    for tenant in (acme, globex):
        runs = _jobs(clean_db.owner, tenant.id, "test.nightly")
        assert runs
        assert all(isinstance(payload, dict) and "tick" in payload for _, payload in runs)


async def test_reconcile_queues_a_push_for_each_product_the_erp_has_not_acknowledged(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    for n, synced in enumerate((None, 1, 2)):
        insert_product(clean_db.owner, acme, f"SKU-{n}", version=2, erp_synced_version=synced)
    database = Database.connect(clean_db.app, size=1)
    scheduling = JobScheduling(ProcrastinateQueue(clean_db.app, [ERP_PUSH]), SystemClock())
    try:
        handler = erp_reconcile_handler(database, scheduling, erp_configured=True)

        async def progress(done: int, total: int | None = None) -> None:
            return None

        ctx = JobContext(acme.id, acme.id, ERP_RECONCILE.name, 1, {}, progress)
        assert await handler(ctx) == {"queued": 2}
        # Running it again joins the pushes still waiting instead of doubling them.
        assert await handler(ctx) == {"queued": 2}
        off = erp_reconcile_handler(database, scheduling, erp_configured=False)
        assert await off(ctx) == {"queued": 0, "erp": "none configured"}
    finally:
        await database.dispose()
    pushes = _jobs(clean_db.owner, acme.id, ERP_PUSH.name)
    assert [state for state, _ in pushes] == ["queued", "queued"]


async def test_the_queue_forgets_finished_entries_after_three_days_but_keeps_dead_ones(
    clean_db: Conninfos,
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    ok, broken = JobKind("test.ok", max_attempts=1), JobKind("test.bad", max_attempts=1)

    async def fine(ctx: JobContext) -> JsonObject:
        return {}

    async def fails(ctx: JobContext) -> JsonObject:
        raise RuntimeError("no")

    runtime = make_runtime(clean_db.app, {ok: fine, broken: fails})
    done = await enqueue(clean_db.app, runtime, acme.id, ok)
    dead = await enqueue(clean_db.app, runtime, acme.id, broken)
    async with running_worker(runtime):
        await wait_for(clean_db.owner, acme.id, done, {"succeeded"})
        await wait_for(clean_db.owner, acme.id, dead, {"dead"})
    with psycopg.connect(clean_db.owner) as conn:
        conn.execute("UPDATE procrastinate_events SET at = now() - interval '4 days'")
    prune = runtime.queue.app.tasks["platform.prune_queue"]
    async with runtime.queue.app.open_async():
        await prune.func(timestamp=0)
    with psycopg.connect(clean_db.owner) as conn:
        left = conn.execute("SELECT task_name, status FROM procrastinate_jobs").fetchall()
    assert left == [("test.bad", "failed")]
    # The tenant's own history is untouched.
    assert job_row(clean_db.owner, acme.id, done)["state"] == "succeeded"  # type: ignore[index]
