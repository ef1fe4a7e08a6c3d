"""Serve the app with a suggested fix applied to a throwaway copy of src/, to measure its effect.

    python bench/api/whatif.py --variant async-deps     # then: like `impextech serve`

The repository is not touched: src/impextech is copied into a temporary directory, the
variant's textual edits are applied there (each must match exactly once, so a stale variant
fails loudly instead of measuring nothing), and `impextech serve` runs from that copy with the
usual settings from the environment (the database must already be migrated and seeded;
bench/api/run.py starts `impextech demo` first). The copy is deleted on exit.

Variants:

* ``async-deps``: ``identity_web`` and ``catalog_web`` become ``async def``. As plain ``def``
  FastAPI runs each in a worker thread on every request (two thread hand-offs per product list).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "impextech"

# variant -> [(file under impextech/, old text, new text)]
VARIANTS: dict[str, list[tuple[str, str, str]]] = {
    "async-deps": [
        (
            "identity/adapters/web_context.py",
            "\ndef identity_web(request: Request)",
            "\nasync def identity_web(request: Request)",
        ),
        (
            "catalog/adapters/http.py",
            "\ndef catalog_web(request: Request)",
            "\nasync def catalog_web(request: Request)",
        ),
    ],
}


def patched_copy(variant: str, dest: Path) -> Path:
    target = dest / "impextech"
    shutil.copytree(SRC, target, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in VARIANTS[variant]:
        path = target / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"whatif: variant {variant!r} no longer applies to {rel}")
        path.write_text(text.replace(old, new))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="impextech-whatif-") as tmp:
        sys.path.insert(0, str(patched_copy(args.variant, Path(tmp))))
        from impextech.platform import cli

        if not str(cli.__file__).startswith(tmp):
            raise SystemExit(f"whatif: imported {cli.__file__}, not the patched copy")
        print(f"whatif: serving variant {args.variant} from {tmp}", flush=True)
        sys.argv = ["impextech", "serve"]
        cli.main()


if __name__ == "__main__":
    main()
