"""A real `impextech serve` process over a fresh, migrated database of its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from impextech.platform import database
from tests.support.pg import APP_ROLE, scratch_database, superuser_of
from tests.support.world import Tenant, make_tenant

SECRET = "e2e-secret-key-that-is-long-enough-for-hs256-signing"
CLI = Path(sys.executable).with_name("impextech")
STARTUP_SECONDS = 30.0


@pytest.fixture(scope="session")
def e2e_db(db: database.Conninfos) -> Iterator[database.Conninfos]:
    """A second database on the session's cluster, migrated, for the server process alone."""
    with scratch_database(superuser_of(db.owner), "impextech_e2e") as infos:
        database.upgrade(infos.owner, APP_ROLE)
        yield infos


@pytest.fixture(scope="session")
def e2e_tenants(e2e_db: database.Conninfos) -> dict[str, Tenant]:
    return {slug: make_tenant(e2e_db.owner, slug) for slug in ("acme", "globex")}


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


def cli_env(infos: database.Conninfos, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment an operator would give the command: nothing inherited that matters."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("IMPEXTECH_") and k not in ("DATABASE_URL", "TEST_DATABASE_URL")
    }
    env.update(
        DATABASE_URL=infos.owner,
        IMPEXTECH_APP_DATABASE_URL=infos.app,
        IMPEXTECH_SECRET_KEY=SECRET,
        IMPEXTECH_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path
    infos: database.Conninfos
    tenants: dict[str, Tenant]

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.stderr_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def raw_log(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def server(
    e2e_db: database.Conninfos, e2e_tenants: dict[str, Tenant], e2e_dir: Path
) -> Iterator[Server]:
    port = free_port()
    stderr_path = e2e_dir / "server.stderr"
    stdout_path = e2e_dir / "server.stdout"
    env = cli_env(
        e2e_db,
        e2e_dir / "data",
        IMPEXTECH_LOG_FORMAT="json",
        IMPEXTECH_LOG_LEVEL="info",
        IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT="1000/900",
        IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS="1000/900",
        IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE="1000/900",
        IMPEXTECH_SIGN_IN_BACKOFF_AFTER="1000",
        IMPEXTECH_SIGN_UPS_PER_ADDRESS="1000/3600",
        IMPEXTECH_PASSWORD_CHANGE_FAILURES="1000/900",
    )
    with stderr_path.open("wb") as stderr, stdout_path.open("wb") as stdout:
        process = subprocess.Popen(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=e2e_dir,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(process, base_url, stderr_path)
        yield Server(base_url, process, stderr_path, e2e_db, e2e_tenants)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_live(process: subprocess.Popen[bytes], base_url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{stderr_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"the server did not answer /healthz in {STARTUP_SECONDS} s:\n{stderr_path.read_text()}"
    )


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client
