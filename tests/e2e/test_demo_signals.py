"""Real `impextech demo` processes: however they are stopped, the embedded cluster stops too.

Each test gives the demo a data directory of its own, so the cluster in it is the demo's alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from impextech.platform import embedded
from tests.e2e.conftest import CLI, free_port
from tests.support.pg import assert_no_postmaster, postmasters_of

READY_SECONDS = 120.0  # a first start runs initdb, the migrations and the demo seed
EXIT_SECONDS = 30.0


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class DemoSite:
    """A data directory and every process started on it; stops what the test left running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.pgdata = self.data_dir / "pg"
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMPEXTECH_") and k not in ("DATABASE_URL", "TEST_DATABASE_URL")
        }
        env.update(
            IMPEXTECH_DATA_DIR=str(self.data_dir),
            IMPEXTECH_LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start_demo(self) -> Demo:
        port = free_port()
        log = self.root / f"demo-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(CLI), "demo", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env(),
                cwd=self.root,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started.append(process)
        demo = Demo(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the demo exited early:\n{demo.output()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{demo.base_url}/readyz", timeout=1.0).status_code == 200:
                    return demo
            time.sleep(0.2)
        pytest.fail(f"the demo was not ready in {READY_SECONDS} s:\n{demo.output()}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLI), *args],
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def users(self) -> list[int]:
        """pgserver's list of the processes using the cluster."""
        listed: list[int] = json.loads((self.pgdata / embedded.USERS_FILE).read_text())
        return listed

    def the_postmaster(self) -> int:
        running = postmasters_of(self.pgdata)
        assert len(running) == 1, running
        assert embedded.postmaster_pid(self.pgdata.resolve()) == running[0]
        return running[0]

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        if self.pgdata.is_dir():
            embedded.stop(self.pgdata.resolve())  # only when a test failed half-way


@pytest.fixture
def site() -> Iterator[DemoSite]:
    # Not under pytest's temporary directory: pgserver opens up every directory above the
    # cluster's to the system user it runs PostgreSQL as (when we are root).
    root = Path(tempfile.mkdtemp(prefix="impextech-demo-signals-"))
    root.chmod(0o755)
    place = DemoSite(root)
    try:
        yield place
    finally:
        place.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def stop(demo: Demo, sig: signal.Signals) -> int:
    demo.process.send_signal(sig)
    try:
        return demo.process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the demo did not exit {EXIT_SECONDS} s after {sig.name}:\n{demo.output()}")


def assert_cluster_stopped(site: DemoSite) -> None:
    assert_no_postmaster(site.pgdata)
    assert not (site.pgdata / "postmaster.pid").exists()
    assert site.users() == []


def test_sigterm_stops_the_demo_and_its_cluster(site: DemoSite) -> None:
    demo = site.start_demo()
    site.the_postmaster()
    assert site.users() == [demo.process.pid]

    assert stop(demo, signal.SIGTERM) == embedded.SIGTERM_EXIT, demo.output()

    assert_cluster_stopped(site)
    assert "Traceback" not in demo.output()


def test_ctrl_c_stops_the_demo_and_its_cluster(site: DemoSite) -> None:
    demo = site.start_demo()
    site.the_postmaster()

    assert stop(demo, signal.SIGINT) == 130, demo.output()

    assert_cluster_stopped(site)
    assert "Traceback" not in demo.output()


def test_a_killed_demo_leaves_nothing_that_keeps_the_next_one_from_stopping(
    site: DemoSite,
) -> None:
    killed = site.start_demo()
    postmaster = site.the_postmaster()
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(timeout=EXIT_SECONDS)
    # SIGKILL runs nothing: the cluster runs on and the dead pid stays in the list.
    assert postmasters_of(site.pgdata) == [postmaster]
    assert site.users() == [killed.process.pid]

    demo = site.start_demo()
    assert site.the_postmaster() == postmaster  # the next demo uses the running cluster
    assert site.users() == [demo.process.pid]  # and dropped the dead one from the list

    assert stop(demo, signal.SIGINT) == 130, demo.output()

    assert_cluster_stopped(site)


def test_a_command_stops_the_cluster_it_started_but_not_one_another_process_uses(
    site: DemoSite,
) -> None:
    upgraded = site.run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert_cluster_stopped(site)

    demo = site.start_demo()
    postmaster = site.the_postmaster()
    current = site.run("db", "current")
    assert current.returncode == 0, current.stderr
    assert site.the_postmaster() == postmaster
    assert site.users() == [demo.process.pid]
    assert httpx.get(f"{demo.base_url}/readyz", timeout=5.0).status_code == 200

    assert stop(demo, signal.SIGTERM) == embedded.SIGTERM_EXIT, demo.output()
    assert_cluster_stopped(site)
