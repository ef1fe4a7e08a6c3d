#!/usr/bin/env python3
"""Bootstrap and run Impextech with nothing but Python >= 3.11 on the machine.

    python3 tasks.py demo [--port 8000]   # the whole platform on embedded PostgreSQL
    python3 tasks.py test                 # lint, types, import contracts and every test tier

The test command also installs Debian's chromium (for the browser tier) with apt-get when
/usr/bin/chromium is missing, using sudo when not run as root.

The first run creates ./.venv, installs uv into it, and installs the hash-pinned lock file
(requirements/dev.txt) with --require-hashes. Later runs reuse it unless the lock file changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
LOCK = ROOT / "requirements" / "dev.txt"
STAMP = VENV / ".impextech-lock-sha256"
# The browser tier drives Debian's chromium (Playwright's own browser download is not used).
CHROMIUM = Path(os.environ.get("IMPEXTECH_CHROMIUM", "/usr/bin/chromium"))
BROWSER_TIER = ROOT / "tests" / "browser"
BROWSER_PACKAGES = ["chromium", "chromium-driver"]
CHROMIUM_HOWTO = (
    "tasks.py: the browser tests need Debian's chromium; as root run `apt-get update && "
    "apt-get install -y --no-install-recommends chromium chromium-driver`, then run this again"
)

# Steps of the test command, in order; each must pass.
CHECKS: list[list[str]] = [
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "."],
    ["mypy"],
    ["lint-imports"],
]


def _run(argv: list[str], **kwargs: object) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]  # noqa: S603


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (this file runs on any python3)
        sys.exit("Impextech needs Python 3.11 or newer")
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        _run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "uv"])
    env = dict(os.environ, VIRTUAL_ENV=str(VENV))
    _run([str(BIN / "uv"), "pip", "install", "--require-hashes", "-r", str(LOCK)], env=env)
    _run([str(BIN / "uv"), "pip", "install", "--no-deps", "-e", str(ROOT)], env=env)
    STAMP.write_text(digest)


def _runs_browser_tier(tiers: list[str]) -> bool:
    """Whether pytest, given these arguments, collects tests/browser (no path: all of tests)."""
    paths = [(ROOT / arg.split("::", 1)[0]).resolve() for arg in tiers if not arg.startswith("-")]
    paths = [path for path in paths if path.exists()]  # an option's value is not a path
    return not paths or any(
        path == BROWSER_TIER or BROWSER_TIER in path.parents or path in BROWSER_TIER.parents
        for path in paths
    )


def ensure_chromium() -> int:
    """Install Debian's chromium for the browser tier when it is missing; 0 once it is there."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return 0
    sudo = shutil.which("sudo")
    if shutil.which("apt-get") is None or (os.geteuid() != 0 and sudo is None):
        print(CHROMIUM_HOWTO, file=sys.stderr)
        return 1
    prefix = [] if os.geteuid() == 0 else [str(sudo)]
    print(f"installing {' and '.join(BROWSER_PACKAGES)} for the browser tests", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *BROWSER_PACKAGES]
    try:
        _run([*prefix, "apt-get", "update", "-q"], env=env)
        _run([*prefix, *install], env=env)
    except subprocess.CalledProcessError as exc:
        print(f"tasks.py: installing chromium failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        print(f"tasks.py: chromium is installed but {CHROMIUM} is not there", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "env"}:
        print(__doc__)
        return 2
    ensure_env()
    command, rest = argv[0], argv[1:]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if command == "env":
        return 0
    if command == "demo":
        os.execv(str(BIN / "impextech"), [str(BIN / "impextech"), "demo", *rest])  # noqa: S606
    tiers = rest or ["tests"]
    if _runs_browser_tier(tiers) and ensure_chromium() != 0:
        return 1
    for check in CHECKS:
        try:
            _run([str(BIN / check[0]), *check[1:]])
        except subprocess.CalledProcessError as exc:
            print(f"tasks.py: {' '.join(check)} failed (exit {exc.returncode})", file=sys.stderr)
            return 1
    result = subprocess.run([str(BIN / "pytest"), *tiers], cwd=ROOT, check=False)  # noqa: S603
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
