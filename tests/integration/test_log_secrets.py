"""No log line carries a password or a token, even when a request crashes holding one.

Each crash is forced inside the identity use case that holds the secret in a local variable:
sign-in (the password), refresh (the refresh token) and authentication (the access token). The
log output of both formats is then searched whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from uuid import UUID

import httpx
import pytest
import structlog

from impextech.identity.service.ports import AccessClaims, AccessTokenCodec, PasswordHasher
from impextech.kernel.domain.principal import Role
from impextech.platform.app import create_app
from impextech.platform.database import Conninfos
from impextech.platform.logs import REDACTED, configure_logging
from tests.conftest import make_settings
from tests.support.world import PASSWORD, login, make_tenant

pytestmark = pytest.mark.anyio


class Boom(RuntimeError):
    pass


class CrashingHasher:
    """Hashes with the real hasher until told to crash on every verify."""

    def __init__(self, real: PasswordHasher) -> None:
        self.real = real
        self.crash = False

    async def hash(self, password: str) -> str:
        return await self.real.hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        if self.crash:
            raise Boom("the hasher broke")
        return await self.real.verify(password_hash, password)

    async def burn(self, password: str) -> None:
        await self.real.burn(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return False


class CrashingCodec:
    def __init__(self, real: AccessTokenCodec) -> None:
        self.real = real
        self.lifetime_seconds = real.lifetime_seconds
        self.crash = False

    def issue(self, tenant_id: UUID, user_id: UUID, role: Role, session_id: UUID) -> str:
        if self.crash:
            raise Boom("the codec broke while issuing")
        return self.real.issue(tenant_id, user_id, role, session_id)

    def verify(self, token: str) -> AccessClaims:
        if self.crash:
            raise Boom("the codec broke while verifying")
        return self.real.verify(token)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False
        logging.getLogger("procrastinate").setLevel(logging.NOTSET)
        structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.usefixtures("restore_logging")
async def test_crashes_log_no_password_and_no_token(
    fmt: Literal["json", "console"],
    clean_db: Conninfos,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(fmt, "info")  # after capsys took stderr over, so the handler writes there
    app = create_app(make_settings(tmp_path), clean_db.app)
    auth = app.state.identity.auth
    hasher, codec = CrashingHasher(auth._hasher), CrashingCodec(auth._tokens)
    auth._hasher, auth._tokens = hasher, codec
    tenant = make_tenant(clean_db.owner, "acme")
    shopper = tenant["shopper"]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await login(client, shopper)
            capsys.readouterr()  # only what the crashes log is judged below

            hasher.crash = True
            signin = await client.post(
                "/api/v1/auth/login",
                json={"email": shopper.email, "password": PASSWORD},
                headers={"X-Tenant": "acme"},
            )
            codec.crash = True
            refresh = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": shopper.refresh_token}
            )
            me = await client.get("/api/v1/users/me", headers=shopper.auth)
    finally:
        await app.state.database.dispose()

    assert [signin.status_code, refresh.status_code, me.status_code] == [500, 500, 500]
    logged = capsys.readouterr().err
    # The crashes were logged, with their tracebacks: the search below is over real output.
    assert logged.count("Boom") >= 3, logged
    assert "the hasher broke" in logged
    assert "the codec broke while issuing" in logged
    assert "the codec broke while verifying" in logged
    for secret in (PASSWORD, shopper.refresh_token, shopper.access_token):
        assert secret not in logged
    # The parts of a token too (a renderer may cut a long value short).
    assert shopper.refresh_token.split(".", 1)[1][:16] not in logged
    assert shopper.access_token.split(".")[1][:16] not in logged


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secret_named_fields_are_redacted(
    fmt: Literal["json", "console"], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt, "info")
    log = structlog.get_logger("test.secrets")
    log.info(
        "careless",
        password="hunter2-hunter2",
        refresh_token="r-secret-value",
        extra={"Access-Token": "a-secret-value", "nested": [{"new_password": "n-secret"}]},
        email="ada@example.org",
        kept="visible-value",
    )
    logging.getLogger("test.foreign").warning("foreign %s", "line")
    logged = capsys.readouterr().err
    for secret in ("hunter2", "r-secret", "a-secret", "n-secret", "ada@example.org"):
        assert secret not in logged
    assert "visible-value" in logged
    assert REDACTED in logged
    assert "foreign line" in logged
