"""/console/reset-password in chromium: the page a password-reset e-mail links to.

The e-mail itself is the worker's (tests/integration/test_password_reset.py); here the link is
made as the worker makes it, from the job the request queued and the server's secret key, so the
page is driven exactly as someone who clicked it would drive it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest
from playwright.async_api import Page, expect

from impextech.identity.domain.password_reset import decode_seed, reset_token
from tests.e2e.conftest import SECRET, Server
from tests.support.world import PASSWORD, Account, make_tenant

pytestmark = pytest.mark.anyio

PAGE = "/console/reset-password"
NEW_PASSWORD = "a brand new passphrase for the browser test"
SCREENSHOTS = os.environ.get("IMPEXTECH_SCREENSHOTS")

expect.set_options(timeout=10_000)


def fresh_tenant(server: Server) -> tuple[str, UUID, Account]:
    slug = f"rp{uuid.uuid4().hex[:8]}"
    tenant = make_tenant(server.infos.owner, slug)
    return slug, tenant.id, tenant["shopper"]


def queued_seeds(server: Server, tenant_id: UUID) -> list[str]:
    """The seeds the requests' e-mail jobs carry (the worker derives each link from one)."""
    with psycopg.connect(server.infos.owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        rows = conn.execute(
            "SELECT payload FROM jobs WHERE tenant_id = %s AND kind = 'identity.send_mail'"
            " ORDER BY created_at",
            (tenant_id,),
        ).fetchall()
    return [str(row[0]["seed"]) for row in rows]


def link_token(server: Server, tenant_id: UUID) -> str:
    [seed] = queued_seeds(server, tenant_id)
    return reset_token(SECRET.encode(), tenant_id, decode_seed(seed))


async def ask_for_reset(server: Server, slug: str, email: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        response = await api.post(
            "/api/v1/auth/password-reset", json={"email": email}, headers={"X-Tenant": slug}
        )
    assert response.status_code == 202, response.text


async def signs_in(server: Server, slug: str, email: str, password: str) -> bool:
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        response = await api.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"X-Tenant": slug},
        )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def snap(page: Page, name: str) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def test_the_link_sets_a_new_password_and_leaves_the_address_bar_clean(
    page: Page, server: Server
) -> None:
    slug, tenant_id, shopper = fresh_tenant(server)
    await ask_for_reset(server, slug, shopper.email)
    token = link_token(server, tenant_id)

    await page.goto(f"{server.base_url}{PAGE}?token={token}")
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "token" not in page.url  # read once, then dropped from the address and the history
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password, again", exact=True).fill(NEW_PASSWORD)
    await snap(page, "reset-choose")
    await page.get_by_role("button", name="Set the new password").click()

    await expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    await snap(page, "reset-done")
    assert await signs_in(server, slug, shopper.email, NEW_PASSWORD)
    assert not await signs_in(server, slug, shopper.email, PASSWORD)


async def test_two_different_passwords_are_caught_before_anything_is_sent(
    page: Page, server: Server
) -> None:
    slug, tenant_id, shopper = fresh_tenant(server)
    await ask_for_reset(server, slug, shopper.email)
    token = link_token(server, tenant_id)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))

    await page.goto(f"{server.base_url}{PAGE}?token={token}")
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password, again", exact=True).fill(NEW_PASSWORD + "!")
    await page.get_by_role("button", name="Set the new password").click()

    await expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    assert not any("/password-reset/confirm" in url for url in sent)
    assert await signs_in(server, slug, shopper.email, PASSWORD)


async def test_a_used_link_says_so_and_offers_a_new_one(page: Page, server: Server) -> None:
    slug, tenant_id, shopper = fresh_tenant(server)
    await ask_for_reset(server, slug, shopper.email)
    token = link_token(server, tenant_id)
    async with httpx.AsyncClient(base_url=server.base_url) as api:
        used = await api.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": NEW_PASSWORD},
        )
    assert used.status_code == 204

    await page.goto(f"{server.base_url}{PAGE}?token={token}")
    await page.get_by_label("New password", exact=True).fill("yet another long passphrase")
    await page.get_by_label("New password, again", exact=True).fill("yet another long passphrase")
    await page.get_by_role("button", name="Set the new password").click()

    await expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    await expect(page.locator("#ask-error")).to_contain_text("This link no longer works")
    assert await signs_in(server, slug, shopper.email, NEW_PASSWORD)


async def test_without_a_token_it_asks_for_a_link_and_answers_alike_for_anyone(
    page: Page, server: Server
) -> None:
    slug, tenant_id, shopper = fresh_tenant(server)
    await page.goto(server.base_url + PAGE)
    for email in (shopper.email, "nobody-here@example.org"):
        await page.get_by_label("Marketplace", exact=True).fill(slug)
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_role("button", name="Send me a link").click()
        await expect(page.get_by_role("status")).to_have_text(
            "If this address has an account there, a link is on its way."
        )
    await snap(page, "reset-ask")
    # The page answered both alike; only the account's e-mail was queued.
    assert len(queued_seeds(server, tenant_id)) == 1
