"""/console/jobs in chromium: an admin signs in, reads the numbers and acts on dead jobs.

Dead jobs are made for real: a worker in this process runs a kind that fails, against the
server's own database. The server knows nothing of that kind, and needs not: retry and discard
act on the jobs row and the queue's row, and this process's worker runs the retried job.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from playwright.async_api import Page, expect

from impextech.jobs.api import Backoff, JobContext, JobKind, JsonObject
from tests.e2e.conftest import Server
from tests.support.jobs import enqueue, job_row, make_runtime, running_worker, wait_for
from tests.support.world import PASSWORD, Account, make_tenant

pytestmark = pytest.mark.anyio

CONSOLE = "/console/jobs"
SESSION_KEY = "impextech.console.session"
# Set IMPEXTECH_SCREENSHOTS to a directory to keep a picture of the console (not committed).
SCREENSHOTS = os.environ.get("IMPEXTECH_SCREENSHOTS")
NASTY_ERROR = 'ERP refused <b>SKU-42</b> & <img src=x data-x="1"> "quoted"'

expect.set_options(timeout=10_000)


async def sign_in(page: Page, server: Server, account: Account, password: str = PASSWORD) -> None:
    await page.goto(server.base_url + CONSOLE)
    await page.get_by_label("Marketplace", exact=True).fill(account.tenant_slug)
    await page.get_by_label("Email", exact=True).fill(account.email)
    password_field = page.get_by_label("Password", exact=True)
    await password_field.fill(password)
    await password_field.press("Enter")  # the keyboard submits the form


async def snap(page: Page, name: str) -> None:
    if SCREENSHOTS:  # playwright makes the directory
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def stored_session(page: Page) -> Any:
    return await page.evaluate(f"JSON.parse(sessionStorage.getItem('{SESSION_KEY}'))")


async def local_storage_size(page: Page) -> int:
    size: int = await page.evaluate("localStorage.length")
    return size


def stat(page: Page, state: str) -> Any:
    return page.locator(f'.stat[data-state="{state}"] dd')


def row(page: Page, job_id: UUID) -> Any:
    return page.locator(f'tr[data-job-id="{job_id}"]')


async def test_the_page_is_served_with_its_own_strict_policy_and_stays_out_of_the_api(
    server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get(CONSOLE)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        script = await http.get("/console/assets/console.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert (await http.get("/console/assets/../app.py")).status_code == 404
        assert (await http.get("/console/assets/jobs.html")).status_code == 404
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith("/console")]


async def test_an_admin_sees_the_numbers_retries_one_dead_job_and_discards_another(
    page: Page, server: Server
) -> None:
    acme = server.tenants["acme"]
    kind = JobKind("browser.partner_sync", max_attempts=1, backoff=Backoff(0.05, 0.1))
    healed = False
    runs = Counter[UUID]()

    async def handler(ctx: JobContext) -> JsonObject:
        runs[ctx.job_id] += 1
        if not healed:
            raise RuntimeError(NASTY_ERROR)
        return {"synced": True}

    owner, app = server.infos.owner, server.infos.app
    runtime = make_runtime(app, {kind: handler})
    first = await enqueue(app, runtime, acme.id, kind)
    second = await enqueue(app, runtime, acme.id, kind)
    async with running_worker(runtime):
        for job_id in (first, second):
            dead = await wait_for(owner, acme.id, job_id, {"dead"})
            assert dead["last_error"] == f"RuntimeError: {NASTY_ERROR}"
        healed = True  # the partner is fixed: a retried job now succeeds

        await sign_in(page, server, acme["admin"])
        await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_focused()
        await expect(stat(page, "dead")).to_have_text("2")
        await expect(stat(page, "succeeded")).to_have_text("0")
        await expect(page.locator("#who-tenant")).to_have_text("acme")
        for job_id in (first, second):
            await expect(row(page, job_id)).to_contain_text(kind.name)
            await expect(row(page, job_id).locator("td.num")).to_have_text("1 / 1")
            # The error is shown as text: its markup never becomes elements.
            await expect(row(page, job_id).locator(".error-text")).to_have_text(
                f"RuntimeError: {NASTY_ERROR}"
            )
        assert await page.locator("#dead-rows b, #dead-rows img").count() == 0
        session = await stored_session(page)
        assert (session["tenant"], session["email"]) == ("acme", acme["admin"].email)
        assert isinstance(session["token"], str)
        assert session["token"]
        assert await local_storage_size(page) == 0
        await snap(page, "console-jobs")

        await row(page, first).get_by_role("button", name=f"Retry job {str(first)[:8]}").click()
        await expect(page.locator("#action-ok")).to_contain_text(
            f"Job {str(first)[:8]} ({kind.name}) is queued again"
        )
        await expect(row(page, first)).to_have_count(0)
        done = await wait_for(owner, acme.id, first, {"succeeded"})
        assert (done["attempts"], done["result"]) == (1, {"synced": True})
        await expect(stat(page, "succeeded")).to_have_text("1")  # the auto-refresh shows it
        await expect(stat(page, "dead")).to_have_text("1")

        # Discard asks first; cancelling (Escape) changes nothing.
        discard = row(page, second).get_by_role("button", name=f"Discard job {str(second)[:8]}")
        await discard.click()
        dialog = page.get_by_role("dialog", name="Discard this job?")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text(str(second))
        await snap(page, "console-discard-dialog")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(discard).to_be_focused()
        assert job_row(owner, acme.id, second)["state"] == "dead"  # type: ignore[index]

        await discard.click()
        await dialog.get_by_role("button", name="Discard job").click()
        await expect(page.locator("#action-ok")).to_have_text(
            f"Job {str(second)[:8]} ({kind.name}) was discarded."
        )
        await expect(row(page, second)).to_have_count(0)
        await expect(page.locator("#dead-empty")).to_be_visible()
        await expect(stat(page, "dead")).to_have_text("0")
        await expect(stat(page, "discarded")).to_have_text("1")
        assert job_row(owner, acme.id, second)["state"] == "discarded"  # type: ignore[index]
    assert runs == Counter({first: 2, second: 1})  # discarding ran nothing


async def test_many_dead_jobs_page_and_a_waiting_job_shows_its_age(
    page: Page, server: Server
) -> None:
    initech = make_tenant(server.infos.owner, "initech")  # its own numbers, apart from the rest
    kind = JobKind("browser.bulk", max_attempts=1)
    idle = JobKind("browser.idle", queue="browser_idle")  # no worker serves this queue

    async def handler(ctx: JobContext) -> JsonObject:
        n = ctx.payload["n"]
        raise ValueError(f"row {n} is bad" + ("; " + "column x is empty, " * 20 if n == 0 else ""))

    async def never(ctx: JobContext) -> JsonObject:
        raise AssertionError("nothing serves this queue")

    owner, app = server.infos.owner, server.infos.app
    runtime = make_runtime(app, {kind: handler, idle: never})
    dead = [await enqueue(app, runtime, initech.id, kind, {"n": n}) for n in range(27)]
    async with running_worker(runtime):
        for job_id in dead:
            await wait_for(owner, initech.id, job_id, {"dead"})
    await enqueue(app, runtime, initech.id, idle)

    await sign_in(page, server, initech["admin"])
    await expect(stat(page, "dead")).to_have_text("27")
    await expect(stat(page, "queued")).to_have_text("1")
    await expect(page.locator("#oldest dd")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    rows = page.locator("#dead-rows tr")
    await expect(rows).to_have_count(25)
    await page.get_by_role("button", name="Show more").click()
    await expect(rows).to_have_count(27)
    await expect(page.get_by_role("button", name="Show more")).to_be_hidden()
    shown = {UUID(i) for i in await rows.evaluate_all("rs => rs.map(r => r.dataset.jobId)")}
    assert shown == set(dead)

    # A long error shows its start; the rest opens in place, from the keyboard too.
    long_error = "ValueError: row 0 is bad; " + "column x is empty, " * 20
    toggle = row(page, dead[0]).locator("summary")
    await expect(toggle).to_contain_text(long_error[:160] + "…")
    await expect(row(page, dead[0]).locator(".error-full")).to_be_hidden()
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(row(page, dead[0]).locator(".error-full")).to_have_text(long_error.rstrip())
    await snap(page, "console-long-error")
    # The next automatic refresh keeps the longer list on screen.
    updated = await page.locator("#updated").text_content()
    await expect(page.locator("#updated")).not_to_have_text(updated or "")
    await expect(rows).to_have_count(27)


async def test_acting_on_a_job_that_is_no_longer_dead_shows_the_problem(
    page: Page, server: Server
) -> None:
    globex = server.tenants["globex"]
    kind = JobKind("browser.race", max_attempts=1)

    async def handler(ctx: JobContext) -> JsonObject:
        raise ValueError("bad row 7")

    owner, app = server.infos.owner, server.infos.app
    runtime = make_runtime(app, {kind: handler})
    job_id = await enqueue(app, runtime, globex.id, kind)
    async with running_worker(runtime):
        await wait_for(owner, globex.id, job_id, {"dead"})
    await sign_in(page, server, globex["admin"])
    await expect(row(page, job_id)).to_be_visible()
    await page.locator("#auto-refresh").uncheck()  # keep the stale row on screen

    # Another admin discards it meanwhile (over the API); this page still offers Retry.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": globex["admin"].email, "password": PASSWORD},
            headers={"X-Tenant": "globex"},
        )
        token = login.json()["access_token"]
        discarded = await http.post(
            f"/api/v1/jobs/{job_id}/discard", headers={"Authorization": f"Bearer {token}"}
        )
        assert discarded.status_code == 200, discarded.text

    await row(page, job_id).get_by_role("button", name="Retry").click()
    error = page.locator("#action-error")
    await expect(error).to_contain_text(f"Could not retry job {str(job_id)[:8]}.")
    await expect(error).to_contain_text("Only a dead job can be retried or discarded: job")
    await expect(error).to_contain_text("is discarded")
    await expect(row(page, job_id)).to_have_count(0)  # the list was reloaded
    await snap(page, "console-conflict")
    assert job_row(owner, globex.id, job_id)["state"] == "discarded"  # type: ignore[index]


async def test_a_wrong_password_shows_the_error_and_stays_on_the_form(
    page: Page, server: Server
) -> None:
    await sign_in(page, server, server.tenants["acme"]["admin"], password="not-the-password-1")
    await expect(page.get_by_role("alert")).to_have_text("The email or password is wrong")
    await snap(page, "console-sign-in-refused")
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    assert await stored_session(page) is None


async def test_a_missing_field_is_named_before_anything_is_sent(page: Page, server: Server) -> None:
    await page.goto(server.base_url + CONSOLE)
    await page.get_by_label("Marketplace", exact=True).fill("acme")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Enter your email, your password.")
    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    await expect(page.get_by_label("Email", exact=True)).to_have_attribute("aria-invalid", "true")


async def test_a_non_admin_is_refused_and_its_session_ended(page: Page, server: Server) -> None:
    seller = server.tenants["acme"]["seller"]
    sessions_before = _live_sessions(server, seller)
    await sign_in(page, server, seller)
    await expect(page.get_by_role("alert")).to_have_text(
        f"{seller.email} is not an admin of “acme”."
        " The jobs console is for marketplace admins only."
    )
    await expect(page.locator("#signin-form")).to_be_visible()
    await expect(page.locator("#dashboard")).to_be_hidden()
    assert await stored_session(page) is None
    assert _live_sessions(server, seller) == sessions_before  # signed in, then out again


async def test_an_ended_session_returns_to_the_form(page: Page, server: Server) -> None:
    admin = server.tenants["acme"]["admin"]
    await sign_in(page, server, admin)
    await expect(page.locator("#dashboard")).to_be_visible()
    await page.locator("#auto-refresh").uncheck()  # so that the click below is what notices
    token = (await stored_session(page))["token"]

    # The session ends elsewhere (here: logged out over the API); the next refresh notices.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        ended = await http.post("/api/v1/auth/logout", headers=bearer)
        assert ended.status_code == 204
    await page.get_by_role("button", name="Refresh now").click()
    await expect(page.locator("#signin-notice")).to_have_text(
        "Your session has ended. Sign in again to continue."
    )
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect(page.get_by_label("Email", exact=True)).to_have_value(admin.email)
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    assert await stored_session(page) is None

    # A token past its lifetime is not even sent: reloading the page lands on the form.
    await sign_in(page, server, admin)
    await expect(page.locator("#dashboard")).to_be_visible()
    await page.evaluate(
        f"""() => {{
            const s = JSON.parse(sessionStorage.getItem('{SESSION_KEY}'));
            s.expiresAt = Date.now() - 1000;
            sessionStorage.setItem('{SESSION_KEY}', JSON.stringify(s));
        }}"""
    )
    await page.reload()
    await expect(page.locator("#signin-notice")).to_have_text(
        "Your session has ended. Sign in again to continue."
    )
    await expect(page.locator("#dashboard")).to_be_hidden()


async def test_an_admin_demoted_meanwhile_is_sent_back_to_the_form(
    page: Page, server: Server
) -> None:
    admin = server.tenants["globex"]["admin"]
    await sign_in(page, server, admin)
    await expect(page.locator("#dashboard")).to_be_visible()
    await page.locator("#auto-refresh").uncheck()
    _set_role(server, admin, "seller")
    try:
        await page.get_by_role("button", name="Refresh now").click()
        await expect(page.locator("#signin-notice")).to_have_text(
            f"{admin.email} is no longer an admin of “globex”. Sign in with an admin account."
        )
        await expect(page.locator("#dashboard")).to_be_hidden()
        assert await stored_session(page) is None
    finally:
        _set_role(server, admin, "admin")


async def test_sign_out_ends_the_session_at_the_server(page: Page, server: Server) -> None:
    await sign_in(page, server, server.tenants["globex"]["admin"])
    await expect(page.locator("#who-tenant")).to_have_text("globex")
    token = (await stored_session(page))["token"]
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin-notice")).to_have_text("You are signed out.")
    await expect(page.locator("#who")).to_be_hidden()
    assert await stored_session(page) is None
    assert await local_storage_size(page) == 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        refused = await http.get("/api/v1/jobs/summary", headers=bearer)
        assert refused.status_code == 401


def _live_sessions(server: Server, account: Account) -> int:
    tenant_id = server.tenants[account.tenant_slug].id
    with psycopg.connect(server.infos.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        found = conn.execute(
            "SELECT count(*) FROM auth_sessions WHERE user_id = %s AND revoked_at IS NULL",
            (account.id,),
        ).fetchone()
    assert found is not None
    count: int = found[0]
    return count


def _set_role(server: Server, account: Account, role: str) -> None:
    tenant_id = server.tenants[account.tenant_slug].id
    with psycopg.connect(server.infos.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        conn.execute("UPDATE users SET role = %s WHERE id = %s", (role, account.id))
