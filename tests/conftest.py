from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from impextech.platform import database
from impextech.platform.app import create_app
from impextech.platform.settings import Settings
from tests.support.pg import APP_ROLE, assert_no_postmaster, test_database, truncate_all
from tests.support.world import Tenant, login, make_tenant

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def db() -> Iterator[database.Conninfos]:
    """One migrated database for the whole session (tests empty it before they run).

    The cluster lives outside pytest's temporary directories: pytest prunes old ones, which
    would delete a cluster still in use by a concurrent test run.
    """
    workdir = Path(tempfile.mkdtemp(prefix="impextech-test-"))
    try:
        with test_database(workdir) as infos:  # stops the embedded cluster when it ends
            database.upgrade(infos.owner, APP_ROLE)
            yield infos
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert_no_postmaster(workdir / "pg")


@pytest.fixture
def clean_db(db: database.Conninfos) -> database.Conninfos:
    truncate_all(db.owner)
    return db


def make_settings(tmp_path: Path, **overrides: str) -> Settings:
    env = {
        "IMPEXTECH_DATA_DIR": str(tmp_path),
        "IMPEXTECH_SECRET_KEY": TEST_SECRET,
        "IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT": "1000/900",
        "IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS": "1000/900",
        "IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE": "1000/900",
        "IMPEXTECH_SIGN_IN_BACKOFF_AFTER": "1000",
        "IMPEXTECH_SIGN_UPS_PER_ADDRESS": "1000/3600",
        "IMPEXTECH_PASSWORD_CHANGE_FAILURES": "1000/900",
        "IMPEXTECH_LOG_FORMAT": "json",
        "IMPEXTECH_LOG_LEVEL": "warning",
        "IMPEXTECH_APP_DB_ROLE": APP_ROLE,
        "IMPEXTECH_METRICS_TOKEN": METRICS_TOKEN,
        **overrides,
    }
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings, clean_db: database.Conninfos) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clean_db.app)
    yield application
    await application.state.database.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def world(clean_db: database.Conninfos, client: httpx.AsyncClient) -> dict[str, Tenant]:
    """acme and globex, each with admin, seller, seller2 and shopper, all logged in."""
    tenants = {slug: make_tenant(clean_db.owner, slug) for slug in ("acme", "globex")}
    for tenant in tenants.values():
        for account in tenant.accounts.values():
            await login(client, account)
    return tenants
