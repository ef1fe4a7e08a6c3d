#!/usr/bin/env python3
"""Bootstrap and run Impextech with nothing but Python >= 3.11 on the machine.

    python3 tasks.py demo [--port 8000]   # the whole platform on embedded PostgreSQL
    python3 tasks.py test                 # lint, types, import contracts and every test tier

The first run creates ./.venv, installs uv into it, and installs the hash-pinned lock file
(requirements/dev.txt) with --require-hashes. Later runs reuse it unless the lock file changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
LOCK = ROOT / "requirements" / "dev.txt"
STAMP = VENV / ".impextech-lock-sha256"

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
    for check in CHECKS:
        try:
            _run([str(BIN / check[0]), *check[1:]])
        except subprocess.CalledProcessError as exc:
            print(f"tasks.py: {' '.join(check)} failed (exit {exc.returncode})", file=sys.stderr)
            return 1
    tiers = rest or ["tests"]
    result = subprocess.run([str(BIN / "pytest"), *tiers], cwd=ROOT, check=False)  # noqa: S603
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
