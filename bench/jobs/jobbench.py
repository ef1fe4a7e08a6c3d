"""What both jobs benchmarks share: a private PostgreSQL, tenants, processes, the machine.

The run's own process holds the embedded cluster (under a temporary data directory) for its
whole life; every process it starts (web servers, `impextech worker`, CLI commands) reaches the
cluster through ``DATABASE_URL`` and never starts one of its own. Everything is stopped, and the
directory removed, when the run ends (also on failure or Ctrl+C).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH = HERE.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from api.loadgen import percentile  # noqa: E402
from api.run import Servers, free_port, log, machine, stop_on_signals  # noqa: E402
from impextech.platform import database as db  # noqa: E402
from impextech.platform.settings import Settings  # noqa: E402

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- jobs:begin -->", "<!-- jobs:end -->"
ADMIN_PASSWORD = "bench-jobs-passphrase-2026"  # noqa: S105  (a throwaway cluster's account)

__all__ = [
    "ADMIN_PASSWORD",
    "BIN",
    "DOCS",
    "HERE",
    "HOST",
    "ROOT",
    "Cluster",
    "cluster",
    "free_port",
    "log",
    "machine",
    "percentiles_ms",
    "stop_on_signals",
    "write_section",
]


@dataclass
class Cluster:
    data_dir: Path
    owner: str
    app: str
    servers: Servers
    tenants: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        """A child's environment: this cluster, logs at warning (no per-job/request lines)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPEXTECH_", "DATABASE_"))}
        env.update(
            DATABASE_URL=self.owner,
            IMPEXTECH_DATA_DIR=str(self.data_dir),
            IMPEXTECH_HOST=HOST,
            IMPEXTECH_LOG_LEVEL="warning",
            IMPEXTECH_LOG_FORMAT="json",
            IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT="1000000/900",
            IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS="1000000/900",
            IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE="1000000/900",
            IMPEXTECH_SIGN_IN_BACKOFF_AFTER="1000",
            IMPEXTECH_SIGN_UPS_PER_ADDRESS="1000000/3600",
            IMPEXTECH_PASSWORD_CHANGE_FAILURES="1000000/900",  # noqa: S106 (a rate)
        )
        env.update(extra)
        return env

    def settings(self, **extra: str) -> Settings:
        return Settings.from_env(self.env(**extra))

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(BIN / "impextech"), *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"impextech {' '.join(args)}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def create_tenant(self, prefix: str, *, admin_email: str | None = None) -> UUID:
        """A new marketplace (its slug: prefix + a number unique in this run)."""
        self.tenants += 1
        slug = f"{prefix}{self.tenants}"
        self.cli("tenants", "create", slug, "--name", slug.title())
        if admin_email is not None:
            self.cli(
                "users", "create-admin", "--tenant", slug, "--email", admin_email,
                "--password-stdin", stdin=ADMIN_PASSWORD + "\n",
            )  # fmt: skip
        with psycopg.connect(self.owner) as conn:
            row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
        assert row is not None
        return UUID(str(row[0]))

    def owner_query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read on the owner's connection (library tables, pg_stat_*; no RLS there)."""
        with psycopg.connect(self.owner) as conn:
            return list(conn.execute(sql, params).fetchall())

    def owner_exec(self, sql: str) -> None:
        with psycopg.connect(self.owner, autocommit=True) as conn:
            conn.execute(sql.encode())

    def tenant_query(
        self, tenant_id: UUID, sql: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """A read on the app role's connection inside a tenant (the jobs table is under RLS)."""
        with psycopg.connect(self.app) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant_id),))
            return list(conn.execute(sql, params).fetchall())

    def pg_xact_commits(self) -> int:
        rows = self.owner_query(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(rows[0][0])


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """A fresh embedded PostgreSQL, migrated, held by this process until the block ends."""
    data_dir = Path(tempfile.mkdtemp(prefix="impextech-bench-jobs-"))
    data_dir.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
    servers = Servers(data_dir)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPEXTECH_", "DATABASE_"))}
        env["IMPEXTECH_DATA_DIR"] = str(data_dir)
        log(f"embedded PostgreSQL in {data_dir}: start and migrate")
        infos = db.prepare(Settings.from_env(env))
        yield Cluster(data_dir, infos.owner, infos.app, servers)
    finally:
        log("stopping every process started and the embedded cluster")
        servers.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(seconds)
    out = {f"p{p:g}_ms": percentile(values, p) * 1000 for p in (50, 90, 99)}
    out["max_ms"] = values[-1] * 1000 if values else float("nan")
    out["mean_ms"] = statistics.fmean(values) * 1000 if values else float("nan")
    out["n"] = float(len(values))
    return out


def write_section(block: str) -> None:
    """Replace the jobs section of docs/benchmarks.md (or append it), nothing else."""
    text = DOCS.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)
