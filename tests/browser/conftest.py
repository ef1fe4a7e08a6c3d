"""The browser tier: Debian's chromium, driven by Playwright, against a real `impextech serve`.

The server is the e2e tier's (a real process over its own migrated database); this tier only adds
a browser. Playwright's own browser download is not used: the system chromium is.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Error, Page, async_playwright

# The real server and its database, shared with the e2e tier (this tier gets its own instance).
from tests.e2e.conftest import e2e_db, e2e_dir, e2e_tenants, server  # noqa: F401

CHROMIUM = Path(os.environ.get("IMPEXTECH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The browser, or a failure that says how to get it: this tier is never skipped."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (one was found at {found}: set IMPEXTECH_CHROMIUM)" if found else ""
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}{hint}; install it with"
            " `apt-get install -y --no-install-recommends chromium chromium-driver`"
            " (`python3 tasks.py test` does this on a fresh machine)",
            pytrace=False,
        )
    return str(CHROMIUM)


class PageProblems:
    """Script errors and Content-Security-Policy refusals seen by the page: there must be none."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.seen.append(f"CSP: {message.text}")

    def on_page_error(self, error: Error) -> None:
        self.seen.append(f"script error: {error.message}")


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    executable = chromium_path()
    problems = PageProblems()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1360, "height": 900})
            tab = await context.new_page()
            tab.on("console", problems.on_console)
            tab.on("pageerror", problems.on_page_error)
            yield tab
            await context.close()
        finally:
            await browser.close()
    assert problems.seen == [], problems.seen
