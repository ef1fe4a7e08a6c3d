"""The product import through real processes: `impextech serve` takes the file over HTTP and
`impextech worker`, wired exactly as in production, runs the job on its bulk queue."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from impextech.catalog.domain.imports import COLUMNS
from tests.e2e.conftest import CLI, Server, cli_env
from tests.support.world import PASSWORD


@pytest.fixture
def bulk_worker(server: Server, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "worker.log"
    env = cli_env(
        server.infos,
        tmp_path / "data",
        IMPEXTECH_LOG_FORMAT="json",
        IMPEXTECH_WORKER_QUEUES="bulk:1",
    )
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(CLI), "worker"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield log
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)


def test_a_csv_file_is_imported_by_the_worker_process(
    http: httpx.Client, server: Server, bulk_worker: Path
) -> None:
    login = http.post(
        "/api/v1/auth/login",
        json={"email": server.tenants["acme"]["seller"].email, "password": PASSWORD},
        headers={"X-Tenant": "acme"},
    )
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    tag = uuid.uuid4().hex[:8].upper()
    text = (
        ",".join(COLUMNS)
        + f"\nE2E-{tag}-1,Lantern,Bright,outdoor,2599,EUR,4"
        + f"\nE2E-{tag}-2,Stove,,outdoor,abc,EUR,1\n"
    )
    accepted = http.post(
        "/api/v1/products/imports",
        content=text.encode(),
        headers={**auth, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]

    deadline = time.monotonic() + 60
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = http.get(location, headers=auth).json()
        if job["state"] in ("succeeded", "dead"):
            break
        time.sleep(0.1)
    assert job["state"] == "succeeded", (job, bulk_worker.read_text())
    result = http.get(f"{location}/result", headers=auth).json()
    assert result == {
        "rows": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "rejected_rows": [
            {
                "line": 3,
                "sku": f"E2E-{tag}-2",
                "reasons": [{"column": "price_amount", "message": "must be a whole number"}],
            }
        ],
    }
    listed = http.get("/api/v1/products", params={"q": "Lantern"}, headers={"X-Tenant": "acme"})
    ours = [p for p in listed.json()["items"] if p["sku"].startswith(f"E2E-{tag}-")]
    assert [(p["sku"], p["price"], p["stock"], p["version"]) for p in ours] == [
        (f"E2E-{tag}-1", {"amount": 2599, "currency": "EUR"}, 4, 1)
    ]
