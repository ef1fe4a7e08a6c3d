"""`impextech jobs dead|retry|discard` and `impextech worker`, run as an operator would."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from impextech.jobs.adapters.registry import NOOP, noop
from impextech.jobs.api import Backoff, JobContext, JobKind, JsonObject
from impextech.platform.database import Conninfos
from tests.e2e.conftest import CLI, cli_env
from tests.support.jobs import enqueue, job_row, make_runtime, queue_job, running_worker, wait_for
from tests.support.pg import snapshot
from tests.support.world import make_tenant

pytestmark = pytest.mark.anyio

BROKEN = JobKind("test.broken", max_attempts=1, backoff=Backoff(0.05, 0.1))


async def _always_fails(ctx: JobContext) -> JsonObject:
    raise RuntimeError(f"bank said no to {ctx.payload['ref']}")


async def _dead_jobs(clean_db: Conninfos) -> tuple[UUID, list[UUID]]:
    acme = make_tenant(clean_db.owner, "acme")
    runtime = make_runtime(clean_db.app, {BROKEN: _always_fails})
    jobs = [await enqueue(clean_db.app, runtime, acme.id, BROKEN, {"ref": n}) for n in (1, 2)]
    async with running_worker(runtime):
        for job in jobs:
            await wait_for(clean_db.owner, acme.id, job, {"dead"})
    return acme.id, jobs


def _cli(args: list[str], infos: Conninfos, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(infos, tmp_path / "data", COLUMNS="200"),
        timeout=60,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("impextech: error: ")
    return line


async def test_an_operator_lists_retries_and_discards_dead_jobs(
    clean_db: Conninfos, tmp_path: Path
) -> None:
    tenant, (first, second) = await _dead_jobs(clean_db)
    listed = _cli(["jobs", "dead"], clean_db, tmp_path)
    assert listed.returncode == 0, listed.stderr
    for job in (first, second):
        assert str(job) in listed.stdout
    assert "RuntimeError: bank said no to 1" in listed.stdout
    assert "acme" in listed.stdout

    retried = _cli(["jobs", "retry", str(first)], clean_db, tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"job {first} (acme) queued again"
    row = job_row(clean_db.owner, tenant, first)
    assert row is not None
    assert (row["state"], row["attempts"], row["last_error"]) == ("queued", 0, None)
    assert queue_job(clean_db.owner, row["queue_job_id"])["status"] == "todo"

    discarded = _cli(["jobs", "discard", str(second)], clean_db, tmp_path)
    assert discarded.returncode == 0, discarded.stderr
    assert job_row(clean_db.owner, tenant, second)["state"] == "discarded"  # type: ignore[index]
    assert _cli(["jobs", "dead"], clean_db, tmp_path).stdout.strip() == "no dead jobs"


async def test_refused_operator_commands_are_one_line_and_change_nothing(
    clean_db: Conninfos, tmp_path: Path
) -> None:
    _, (first, _) = await _dead_jobs(clean_db)
    retried = _cli(["jobs", "retry", str(first)], clean_db, tmp_path)
    assert retried.returncode == 0
    before = snapshot(clean_db.owner)
    cases = {
        ("jobs", "retry", "not-a-uuid"): "'not-a-uuid' is not a job id",
        ("jobs", "discard", str(uuid4())): "no job",
        ("jobs", "discard", str(first)): f"job {first} is queued",
        ("jobs", "dead", "--tenant", "nowhere"): "no marketplace 'nowhere'",
    }
    for args, expected in cases.items():
        line = _one_line_error(_cli(list(args), clean_db, tmp_path))
        assert expected in line, (args, line)
    assert snapshot(clean_db.owner) == before


def test_worker_refuses_bad_settings_in_one_line(clean_db: Conninfos, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CLI), "worker"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(clean_db, tmp_path / "data", IMPEXTECH_WORKER_QUEUES="urgent:0"),
        timeout=60,
        check=False,
    )
    line = _one_line_error(result)
    assert "IMPEXTECH_WORKER_QUEUES must look like urgent:4,bulk:2" in line


def test_worker_refuses_a_bad_or_busy_metrics_port_and_runs_nothing(
    clean_db: Conninfos, tmp_path: Path
) -> None:
    make_tenant(clean_db.owner, "acme")  # something the refusals must leave alone
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        before = snapshot(clean_db.owner)
        for port, code, expected in (
            (
                "0",
                2,
                "Invalid value for '--metrics-port': Input should be greater than or equal to 1",
            ),
            ("http", 2, "Input should be a valid integer"),
            (str(taken), 1, f"cannot serve metrics on 127.0.0.1:{taken}"),
        ):
            result = _cli(["worker", "--metrics-port", port], clean_db, tmp_path)
            assert result.returncode == code, result
            [line] = result.stderr.splitlines()
            assert line.startswith("impextech: error: "), line
            assert expected in line, line
        assert snapshot(clean_db.owner) == before


def _start_worker(infos: Conninfos, tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = cli_env(
        infos, tmp_path / "data", IMPEXTECH_LOG_FORMAT="json", IMPEXTECH_WORKER_QUEUES="default:2"
    )
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(CLI), "worker"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )


async def test_the_worker_command_runs_jobs_and_drains_on_sigterm(
    clean_db: Conninfos, tmp_path: Path
) -> None:
    acme = make_tenant(clean_db.owner, "acme")
    runtime = make_runtime(clean_db.app, {NOOP: noop})
    job = await enqueue(clean_db.app, runtime, acme.id, NOOP)
    log = tmp_path / "worker.log"
    worker = _start_worker(clean_db, tmp_path, log)
    try:
        row = await wait_for(clean_db.owner, acme.id, job, {"succeeded"}, within=30)
        assert row["attempts"] == 1
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    output = log.read_text()
    assert "worker: queues default×2; lease 30 s, drain 30 s" in output
    assert '"event": "worker stopped"' in output
