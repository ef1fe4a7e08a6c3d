"""The `impextech` command as an operator runs it: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
import typer
from typer.testing import CliRunner

from impextech.platform import cli, database
from tests.e2e.conftest import CLI, Server, cli_env
from tests.support.pg import snapshot
from tests.support.world import Tenant

STRONG = "correct-zebra-lantern-88"


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command the CLI defines, found by walking its click tree."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, prefix: tuple[str, ...]) -> None:
        paths.append(prefix)
        # Typer may bring its own copy of click: look for sub-commands by shape, not by class.
        subcommands: dict[str, object] = getattr(command, "commands", None) or {}
        for name, sub in subcommands.items():
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(cli.app), ())
    return paths


def test_the_installed_command_answers_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CLI), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "100"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage: impextech" in result.stdout
    for group in ("db", "tenants", "users", "serve", "demo"):
        assert group in result.stdout


def test_every_command_answers_help() -> None:
    """Each command's --help, in-process: an interpreter per command would cost seconds each."""
    paths = _command_paths()
    for expected in (
        ("db", "upgrade"),
        ("db", "downgrade"),
        ("db", "current"),
        ("tenants", "create"),
        ("tenants", "list"),
        ("users", "create-admin"),
        ("serve",),
        ("demo",),
    ):
        assert expected in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(cli.app, [*path, "--help"], terminal_width=100)
        where = " ".join(path) or "(top level)"
        assert result.exit_code == 0, (where, result.output)
        assert "Usage: impextech" in result.output, where
        assert "--help" in result.output, where


def _run(
    args: list[str], server: Server, tmp_path: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(server.infos, tmp_path / "data"),
        timeout=60,
        check=False,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("impextech: error: "), result.stderr
    return lines[0]


def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CLI), "tenants", "create", "--bogus"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "impextech: error: No such option: --bogus (see `impextech tenants create --help`)\n"
    )


# Each run is a fresh interpreter (seconds on a busy machine): the slug rules themselves are
# the domain's unit tests; here, one malformed slug and one taken slug.
@pytest.mark.parametrize("slug", ["BAD_SLUG", "acme"])
def test_a_bad_or_taken_tenant_slug_is_one_line_and_creates_nothing(
    server: Server, tmp_path: Path, slug: str
) -> None:
    before = snapshot(server.infos.owner)

    result = _run(["tenants", "create", slug, "--name", "x"], server, tmp_path)

    line = _assert_one_line_error(result)
    assert repr(slug) in line, line
    assert result.stdout == ""
    assert snapshot(server.infos.owner) == before


def _admins(owner: str, tenant: Tenant) -> list[tuple[object, ...]]:
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        return conn.execute(
            "SELECT email, role, status FROM users WHERE email LIKE 'boss%%' ORDER BY email"
        ).fetchall()


def test_create_admin_reads_the_password_from_stdin_and_can_sign_in(
    server: Server, tmp_path: Path
) -> None:
    acme = server.tenants["acme"]
    result = _run(
        ["users", "create-admin", "--tenant", "acme", "--email", "boss@acme.example",
         "--name", "Boss", "--password-stdin"],
        server,
        tmp_path,
        stdin=STRONG + "\n",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created admin boss@acme.example in acme (")
    assert STRONG not in result.stdout + result.stderr
    assert _admins(server.infos.owner, acme) == [("boss@acme.example", "admin", "active")]

    login = httpx.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"email": "boss@acme.example", "password": STRONG},
        headers={"X-Tenant": "acme"},
    )
    assert login.status_code == 200, login.text
    me = httpx.get(
        f"{server.base_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert me.json()["role"] == "admin"


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["--tenant", "acme", "--email", "boss2@acme.example"], "password1234\n", "commonly used"),
        (["--tenant", "nowhere", "--email", "boss2@acme.example"], STRONG + "\n", "'nowhere'"),
    ],
    ids=["weak-password", "unknown-tenant"],
)
def test_create_admin_refusals_are_one_line_and_create_nothing(
    server: Server, tmp_path: Path, args: list[str], stdin: str, expected: str
) -> None:
    before = snapshot(server.infos.owner)

    result = _run(["users", "create-admin", *args, "--password-stdin"], server, tmp_path, stdin)

    line = _assert_one_line_error(result)
    assert expected in line, line
    assert stdin.strip() not in line
    assert snapshot(server.infos.owner) == before


def test_a_downgrade_to_an_unknown_revision_is_one_line_and_changes_nothing(
    server: Server, tmp_path: Path
) -> None:
    before = snapshot(server.infos.owner)

    result = _run(["db", "downgrade", "no-such-revision"], server, tmp_path)

    line = _assert_one_line_error(result)
    assert "no-such-revision" in line, line
    with psycopg.connect(server.infos.owner) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    assert row[0] == database.head_revision()
    assert snapshot(server.infos.owner) == before
