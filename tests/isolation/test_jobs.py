"""Jobs as a leak channel: queue payloads, job status and results, with a real worker.

Both tenants import files naming the same SKUs at once (each job waits for the other to be
running too, and neither finishes before both are done, whichever order the queue hands them out
in); each import touches only its own
tenant's products, each result names only its own tenant's rows, the other tenant's job is a
404, and the job library's global queue rows carry nothing but a tenant id and a job id (the
reason its tables are on the allowlist).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from impextech.catalog.adapters.erp_outbox import ERP_PUSH
from impextech.catalog.adapters.imports_job import PRODUCT_IMPORT, import_handler, product_imports
from impextech.jobs.adapters.queue import ProcrastinateQueue
from impextech.jobs.adapters.runtime import JobRuntime
from impextech.jobs.api import JobContext, JobScheduling, JsonObject
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
from impextech.platform import database
from tests.isolation.battlefield import ATTACKER, VICTIM, import_csv, tenant_rows, unique
from tests.support.accounts import user_directory
from tests.support.jobs import running_worker, wait_for
from tests.support.world import Tenant, make_product

pytestmark = pytest.mark.anyio


@dataclass
class Overlap:
    """The import jobs that ran while the other one ran too, in the order they got going."""

    started: list[UUID] = field(default_factory=list)
    finished: list[UUID] = field(default_factory=list)


@dataclass
class InStep:
    runtime: JobRuntime
    overlap: Overlap


@pytest.fixture
async def runtime(clean_db: database.Conninfos) -> AsyncIterator[InStep]:
    db = Database.connect(clean_db.app, size=4)
    queue = ProcrastinateQueue(clean_db.app, [PRODUCT_IMPORT, ERP_PUSH], pool_size=4)

    async def not_here(ctx: JobContext) -> JsonObject | None:
        raise AssertionError("ERP pushes run on another queue")

    handler = import_handler(
        product_imports(
            db, JobScheduling(queue, SystemClock()), SystemClock(), accounts=user_directory(db)
        )
    )
    # The queue promises no order and no overlap: two slots may take the jobs one after the
    # other. Each import waits until the other one runs too, and returns only once both are
    # done, so their work always overlaps; a job left alone fails the test within 60 s.
    both_running, both_done = asyncio.Barrier(2), asyncio.Barrier(2)
    overlap = Overlap()

    async def in_step(ctx: JobContext) -> JsonObject | None:
        async with asyncio.timeout(60):
            await both_running.wait()
        overlap.started.append(ctx.job_id)
        result = await handler(ctx)
        async with asyncio.timeout(60):
            await both_done.wait()
        overlap.finished.append(ctx.job_id)
        return result

    runtime = JobRuntime(db, queue, {PRODUCT_IMPORT: in_step, ERP_PUSH: not_here}, SystemClock())
    yield InStep(runtime, overlap)
    await db.dispose()


def _products(owner: str, tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        rows = conn.execute("SELECT sku, id, name, seller_id FROM products").fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


async def test_concurrent_imports_of_the_same_skus_stay_in_their_tenants(
    client: httpx.AsyncClient,
    world: dict[str, Tenant],
    clean_db: database.Conninfos,
    runtime: InStep,
) -> None:
    victim, attacker = world[VICTIM], world[ATTACKER]
    existing = await make_product(client, victim["seller"], unique("ACME-").upper())
    shared = unique("SHARED-").upper()
    files = {
        VICTIM: [(shared, unique("acmename"))],
        # B names A's existing SKU and the shared one: new products in B, nothing in A.
        ATTACKER: [(str(existing["sku"]), unique("globexname")), (shared, unique("globexname"))],
    }
    jobs: dict[str, UUID] = {}
    for slug, rows in files.items():
        response = await client.post(
            "/api/v1/products/imports",
            content=import_csv(rows),
            headers={**world[slug]["seller"].auth, "Content-Type": "text/csv"},
        )
        assert response.status_code == 202, response.text
        jobs[slug] = UUID(response.json()["job_id"])
    victim_before = _products(clean_db.owner, victim)

    async with running_worker(runtime.runtime, (("bulk", 2),)):
        for slug, job_id in jobs.items():
            row = await wait_for(clean_db.owner, world[slug].id, job_id, {"succeeded", "dead"}, 90)
            assert row["state"] == "succeeded", row["last_error"]
    assert sorted(runtime.overlap.started) == sorted(jobs.values())
    assert sorted(runtime.overlap.finished) == sorted(jobs.values())

    after = {slug: _products(clean_db.owner, world[slug]) for slug in (VICTIM, ATTACKER)}
    assert after[VICTIM][str(existing["sku"])] == victim_before[str(existing["sku"])]
    assert after[VICTIM][shared][1] == files[VICTIM][0][1]
    assert {sku: v[1] for sku, v in after[ATTACKER].items()} == dict(files[ATTACKER])
    assert {v[2] for v in after[ATTACKER].values()} == {attacker["seller"].id}

    markers = {
        slug: {str(v[0]) for v in after[slug].values()} | {n for _, n in files[slug]}
        for slug in (VICTIM, ATTACKER)
    }
    for slug, other in ((VICTIM, ATTACKER), (ATTACKER, VICTIM)):
        seller = world[slug]["seller"]
        for suffix in ("", "/result"):
            mine = await client.get(f"/api/v1/jobs/{jobs[slug]}{suffix}", headers=seller.auth)
            assert mine.status_code == 200, mine.text
            assert not {m for m in markers[other] if m in mine.text}, mine.text
            for who in ("seller", "admin"):
                theirs = await client.get(
                    f"/api/v1/jobs/{jobs[other]}{suffix}", headers=world[slug][who].auth
                )
                assert theirs.status_code == 404, theirs.text
        listed = await client.get("/api/v1/jobs?limit=100", headers=world[slug]["admin"].auth)
        assert str(jobs[slug]) in listed.text
        assert str(jobs[other]) not in listed.text

    with psycopg.connect(clean_db.owner) as conn:
        queued = conn.execute("SELECT task_name, args FROM procrastinate_jobs").fetchall()
    imports = [args for task, args in queued if task == PRODUCT_IMPORT.name]
    assert sorted(a.get("job_id", "") for a in imports) == sorted(str(j) for j in jobs.values())
    for task, args in queued:
        # A tenant's job names its tenant and its row in `jobs`; a periodic tick, its time.
        assert set(args) in ({"tenant_id", "job_id"}, {"timestamp"}), (task, args)
        if "tenant_id" in args:
            assert args["tenant_id"] in {str(victim.id), str(attacker.id)}
    for slug in (VICTIM, ATTACKER):
        assert tenant_rows(clean_db.owner, world[slug].id)["jobs"]
