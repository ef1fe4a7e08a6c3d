"""`X-Forwarded-For` decides the per-address sign-in limit only when a trusted proxy sent it.

A real `impextech serve` (uvicorn) each time, reached from 127.0.0.1: with FORWARDED_ALLOW_IPS
unset, uvicorn trusts 127.0.0.1 (a proxy on the same host) and counts failures per forwarded
client; with FORWARDED_ALLOW_IPS naming another proxy, the header is a client's claim and is
ignored, so every failure counts against 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from impextech.platform import database
from tests.e2e.conftest import CLI, _wait_until_live, cli_env, free_port
from tests.support.pg import APP_ROLE, scratch_database, superuser_of
from tests.support.world import PASSWORD, make_tenant

ACME = {"X-Tenant": "acme"}


@contextmanager
def serve(db: database.Conninfos, workdir: Path, allow: str | None) -> Iterator[httpx.Client]:
    """A server with three failures allowed per address, over a database of its own."""
    name = f"impextech_xff_{uuid.uuid4().hex[:8]}"
    with scratch_database(superuser_of(db.owner), name) as infos:
        database.upgrade(infos.owner, APP_ROLE)
        make_tenant(infos.owner, "acme")
        env = cli_env(
            infos,
            workdir / "data",
            IMPEXTECH_LOG_FORMAT="json",
            IMPEXTECH_LOG_LEVEL="warning",
            IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS="3/900",
        )
        env.pop("FORWARDED_ALLOW_IPS", None)
        if allow is not None:
            env["FORWARDED_ALLOW_IPS"] = allow
        port = free_port()
        stderr_path = workdir / "server.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_live(process, base_url, stderr_path)
            with httpx.Client(base_url=base_url, timeout=10.0) as client:
                yield client
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _fail(client: httpx.Client, n: int, forwarded: str) -> int:
    """A wrong password for an account of its own (so only the per-address limit can trip)."""
    response = client.post(
        "/api/v1/auth/login",
        json={"email": f"nobody{n}@acme.example", "password": PASSWORD},
        headers={**ACME, "X-Forwarded-For": forwarded},
    )
    assert response.status_code in (401, 429), response.text
    return response.status_code


def test_a_trusted_proxy_names_the_client(
    db: database.Conninfos, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with serve(db, tmp_path_factory.mktemp("xff-trusted"), allow=None) as client:
        assert [_fail(client, n, "198.51.100.7") for n in range(4)] == [401, 401, 401, 429]
        # Another client behind the same proxy has its own budget.
        assert _fail(client, 4, "198.51.100.8") == 401
        # A client cannot escape by prepending an address: the proxy appends the real one.
        assert _fail(client, 5, "203.0.113.1, 198.51.100.7") == 429


def test_an_untrusted_peer_cannot_choose_its_address(
    db: database.Conninfos, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("xff-untrusted")
    with serve(db, workdir, allow="192.0.2.1") as client:
        forged = [_fail(client, n, f"198.51.100.{n + 1}") for n in range(4)]
        # Every failure counted against 127.0.0.1, whatever the header said.
        assert forged == [401, 401, 401, 429]
