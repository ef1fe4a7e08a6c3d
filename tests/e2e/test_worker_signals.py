"""Real worker processes: SIGKILL mid-job loses nothing; SIGTERM drains within a bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from impextech.platform.database import Conninfos
from tests.support.jobs import enqueue, job_row, queue_job
from tests.support.worker_proc import SLEEPY, runtime
from tests.support.world import make_tenant

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, app_conninfo: str, logs: Path) -> None:
        self._app = app_conninfo
        self._logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *, lease: float, drain: float) -> subprocess.Popen[bytes]:
        log = self._logs / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.worker_proc", self._app, str(lease),
                 str(drain)],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.started.append(proc)
        deadline = time.monotonic() + 30
        while b"worker started" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return proc


@pytest.fixture
def workers(clean_db: Conninfos, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(clean_db.app, tmp_path)
    yield pool
    for proc in pool.started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def wait_row(owner: str, tenant: UUID, job: UUID, check: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        row = job_row(owner, tenant, job)
        if row is not None and check(row):
            return row
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not get there in {timeout} s; last seen {row}")


async def test_a_job_whose_worker_is_killed_runs_again_after_its_lease(
    clean_db: Conninfos, workers: Workers
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    job = await enqueue(clean_db.app, runtime(clean_db.app), acme.id, SLEEPY, {"seconds": 2})
    doomed = workers.start(lease=2, drain=5)
    wait_row(clean_db.owner, acme.id, job, lambda r: (r["progress_done"] or 0) >= 3, 20)
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL
    killed_at = time.monotonic()
    assert job_row(clean_db.owner, acme.id, job)["state"] == "running"  # type: ignore[index]

    workers.start(lease=2, drain=5)
    row = wait_row(clean_db.owner, acme.id, job, lambda r: r["state"] == "succeeded", 30)
    recovered_in = time.monotonic() - killed_at
    # The lost attempt counts; the second one ran to the end.
    assert row["attempts"] == 2
    assert row["result"] == {"slept": 2, "attempt": 2}
    # Handed back after the 2 s lease (plus the recovery sweep), then 2 s of work.
    assert 2 <= recovered_in < 15, recovered_in


async def test_sigterm_lets_a_running_job_finish_then_exits(
    clean_db: Conninfos, workers: Workers
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    job = await enqueue(clean_db.app, runtime(clean_db.app), acme.id, SLEEPY, {"seconds": 1.5})
    proc = workers.start(lease=5, drain=10)
    wait_row(clean_db.owner, acme.id, job, lambda r: r["state"] == "running", 20)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - began < 10
    row = job_row(clean_db.owner, acme.id, job)
    assert row is not None
    assert (row["state"], row["attempts"]) == ("succeeded", 1)


async def test_sigterm_releases_a_job_that_outlasts_the_drain(
    clean_db: Conninfos, workers: Workers
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    job = await enqueue(clean_db.app, runtime(clean_db.app), acme.id, SLEEPY, {"seconds": 60})
    proc = workers.start(lease=5, drain=1)
    wait_row(clean_db.owner, acme.id, job, lambda r: r["state"] == "running", 20)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - began < 6  # the 1 s drain plus shutdown, not the job's 60 s
    row = job_row(clean_db.owner, acme.id, job)
    assert row is not None
    # Back in the queue with its attempt given back, ready for the next worker.
    assert (row["state"], row["attempts"]) == ("queued", 0)
    assert queue_job(clean_db.owner, row["queue_job_id"])["status"] == "todo"
    workers.start(lease=5, drain=1)
    wait_row(clean_db.owner, acme.id, job, lambda r: r["state"] == "running", 20)
