"""GET /api/v1/jobs/{id} and the admins' dead-letter routes, over the real app and database."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI

from impextech.jobs.api import Backoff, JobContext, JobKind, JsonObject
from impextech.platform.database import Conninfos
from tests.conftest import METRICS_AUTH
from tests.support.jobs import enqueue, make_runtime, running_worker, wait_for
from tests.support.pg import snapshot
from tests.support.world import Tenant

pytestmark = pytest.mark.anyio

FAST = Backoff(0.05, 0.1)
REPORT = JobKind("test.report", max_attempts=1, backoff=FAST)
BROKEN = JobKind("test.broken", max_attempts=2, backoff=FAST)


async def _report(ctx: JobContext) -> JsonObject:
    await ctx.progress(10, 10)
    return {"rows": 10}


async def _broken(ctx: JobContext) -> JsonObject:
    raise RuntimeError("ERP said no")


async def _seed(clean_db: Conninfos, app: FastAPI, world: dict[str, Tenant]) -> dict[str, UUID]:
    runtime = make_runtime(clean_db.app, {REPORT: _report, BROKEN: _broken})
    acme = world["acme"]
    jobs = {
        "mine": await enqueue(clean_db.app, runtime, acme.id, REPORT,
                              created_by=acme["seller"].id),
        "dead": await enqueue(clean_db.app, runtime, acme.id, BROKEN,
                              created_by=acme["admin"].id),
    }  # fmt: skip
    async with running_worker(runtime):
        await wait_for(clean_db.owner, acme.id, jobs["mine"], {"succeeded"})
        await wait_for(clean_db.owner, acme.id, jobs["dead"], {"dead"})
    return jobs


async def test_the_creator_follows_a_job_and_reads_its_result(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    jobs = await _seed(clean_db, app, world)
    acme = world["acme"]
    response = await client.get(f"/api/v1/jobs/{jobs['mine']}", headers=acme["seller"].auth)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "succeeded"
    assert body["kind"] == "test.report"
    assert (body["attempts"], body["max_attempts"]) == (1, 1)
    assert body["progress"] == {"done": 10, "total": 10, "percent": 100.0}
    assert body["links"] == {
        "self": f"/api/v1/jobs/{jobs['mine']}",
        "result": f"/api/v1/jobs/{jobs['mine']}/result",
    }
    result = await client.get(body["links"]["result"], headers=acme["seller"].auth)
    assert (result.status_code, result.json()) == (200, {"rows": 10})


async def test_others_cannot_see_a_job_and_learn_nothing(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    jobs = await _seed(clean_db, app, world)
    acme, globex = world["acme"], world["globex"]
    for who in (acme["seller2"], acme["shopper"], globex["admin"], globex["seller"]):
        for path in (f"/api/v1/jobs/{jobs['mine']}", f"/api/v1/jobs/{jobs['mine']}/result"):
            response = await client.get(path, headers=who.auth)
            assert response.status_code == 404, (who.email, path)
            assert response.json()["type"].endswith("job-not-found")
    unknown = await client.get(f"/api/v1/jobs/{uuid4()}", headers=acme["admin"].auth)
    assert unknown.status_code == 404
    anonymous = await client.get(f"/api/v1/jobs/{jobs['mine']}", headers={"X-Tenant": "acme"})
    assert anonymous.status_code == 401


async def test_admins_list_dead_jobs_then_retry_or_discard_them(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    jobs = await _seed(clean_db, app, world)
    admin = world["acme"]["admin"].auth
    dead = await client.get("/api/v1/jobs", params={"state": "dead"}, headers=admin)
    assert dead.status_code == 200
    [item] = dead.json()["items"]
    assert (item["id"], item["last_error"], item["attempts"]) == (
        str(jobs["dead"]), "RuntimeError: ERP said no", 2)  # fmt: skip
    summary = (await client.get("/api/v1/jobs/summary", headers=admin)).json()
    assert summary["by_state"]["dead"] == 1
    assert summary["by_state"]["succeeded"] == 1
    assert summary["oldest_waiting_seconds"] is None

    not_dead = await client.post(f"/api/v1/jobs/{jobs['mine']}/retry", headers=admin)
    assert not_dead.status_code == 409
    assert not_dead.json()["type"].endswith("job-not-dead")

    discarded = await client.post(f"/api/v1/jobs/{jobs['dead']}/discard", headers=admin)
    assert (discarded.status_code, discarded.json()["state"]) == (200, "discarded")
    again = await client.post(f"/api/v1/jobs/{jobs['dead']}/retry", headers=admin)
    assert again.status_code == 409


async def test_a_retried_dead_job_is_queued_with_fresh_attempts(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    jobs = await _seed(clean_db, app, world)
    retried = await client.post(
        f"/api/v1/jobs/{jobs['dead']}/retry", headers=world["acme"]["admin"].auth
    )
    assert retried.status_code == 200
    body = retried.json()
    assert (body["state"], body["attempts"], body["last_error"]) == ("queued", 0, None)


async def test_only_admins_manage_jobs_and_nothing_changes_when_refused(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    jobs = await _seed(clean_db, app, world)
    before = snapshot(clean_db.owner)
    seller = world["acme"]["seller"].auth
    for method, path in (
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/summary"),
        ("POST", f"/api/v1/jobs/{jobs['dead']}/retry"),
        ("POST", f"/api/v1/jobs/{jobs['dead']}/discard"),
    ):
        response = await client.request(method, path, headers=seller)
        assert response.status_code == 403, path
    globex_admin = world["globex"]["admin"].auth
    for action in ("retry", "discard"):
        response = await client.post(f"/api/v1/jobs/{jobs['dead']}/{action}", headers=globex_admin)
        assert response.status_code == 404
    admin = world["acme"]["admin"].auth
    for path, params in (
        ("/api/v1/jobs/not-a-uuid", {}),
        ("/api/v1/jobs", {"state": "exploded"}),
        ("/api/v1/jobs", {"limit": "0"}),
        ("/api/v1/jobs", {"cursor": "forged"}),
    ):
        response = await client.get(path, params=params, headers=admin)
        assert response.status_code in (400, 422), (path, params)
        assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(clean_db.owner) == before


async def test_job_list_pages_with_a_cursor_bound_to_the_tenant(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    await _seed(clean_db, app, world)
    admin = world["acme"]["admin"].auth
    first = (await client.get("/api/v1/jobs", params={"limit": 1}, headers=admin)).json()
    assert len(first["items"]) == 1
    assert first["next_cursor"]
    second = await client.get(
        "/api/v1/jobs", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin
    )
    assert len(second.json()["items"]) == 1
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]
    elsewhere = await client.get(
        "/api/v1/jobs",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=world["globex"]["admin"].auth,
    )
    assert elsewhere.status_code == 422


async def test_metrics_show_queue_depth_dead_letters_and_known_queues(
    clean_db: Conninfos, app: FastAPI, client: httpx.AsyncClient, world: dict[str, Tenant]
) -> None:
    await _seed(clean_db, app, world)
    runtime = make_runtime(clean_db.app, {REPORT: _report})
    for _ in range(3):
        await enqueue(clean_db.app, runtime, world["acme"].id, REPORT)
    text = (await client.get("/metrics", headers=METRICS_AUTH)).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("impextech_jobs_")
    }
    assert samples['impextech_jobs_queued{queue="default"}'] == 3
    assert samples['impextech_jobs_dead{queue="default"}'] == 1
    assert samples['impextech_jobs_running{queue="default"}'] == 0
    # Queues with nothing in them still report, so an alert on them is never blind.
    assert samples['impextech_jobs_queued{queue="urgent"}'] == 0
    assert samples['impextech_jobs_queued{queue="bulk"}'] == 0
    assert 0 <= samples['impextech_jobs_oldest_waiting_seconds{queue="default"}'] < 60
