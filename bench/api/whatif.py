"""Serve the app with a suggested fix applied to a throwaway copy of src/, to measure its effect.

    python bench/api/whatif.py --variant cached-reflection     # then: like `impextech serve`

The repository is not touched: src/impextech is copied into a temporary directory, the
variant's textual edits are applied there (each must match exactly once, so a stale variant
fails loudly instead of measuring nothing), and `impextech serve` runs from that copy with the
usual settings from the environment (the database must already be migrated and seeded;
bench/api/run.py starts `impextech demo` first). The copy is deleted on exit.

Variants:

* ``cached-reflection``: no change to src/; FastAPI's per-request inspection of each declared
  parameter's annotation (``field_annotation_is_sequence``, ``_get_param_model``,
  ``_get_param_aliases``, ``_is_json_field``: pure functions of the parameter) is memoised at
  runtime. The product list declares 10 query and 3 header parameters, and FastAPI 0.165 redoes
  that reflection for each of them on every request. This measures what a fix would buy
  (fewer declared parameters, or a FastAPI that caches it); it is not a fix to ship.

Earlier variants, now obsolete because src/ changed: ``async-deps`` (landed in 1928faa),
``fixed-pool`` (SQLAlchemy's pool churned overflow connections; gone with the psycopg pool of
2960fe9) and ``one-throttle-tx`` (both rate-limit hits of a login in one transaction; landed in
27f54e9).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src" / "impextech"

# variant -> [(file under impextech/, old text, new text)]
VARIANTS: dict[str, list[tuple[str, str, str]]] = {}


def _memo_by_identity(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Cache on the first argument's identity (ModelField is unhashable); the cache keeps the
    argument alive, so its id cannot be reused by another object."""
    cache: dict[tuple[int, tuple[Any, ...]], tuple[Any, Any]] = {}

    def wrapper(first: Any, *args: Any, **kwargs: Any) -> Any:
        key = (id(first), (*args, *sorted(kwargs.items())))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = (first, fn(first, *args, **kwargs))
        return hit[1]

    return wrapper


def cache_fastapi_reflection() -> None:
    from fastapi.dependencies import utils

    for name in (
        "field_annotation_is_sequence",
        "_get_param_model",
        "_get_param_aliases",
        "_is_json_field",
    ):
        setattr(utils, name, _memo_by_identity(getattr(utils, name)))


# variant -> a patch applied at runtime, after import and before serving
RUNTIME: dict[str, Callable[[], None]] = {"cached-reflection": cache_fastapi_reflection}


def patched_copy(variant: str, dest: Path) -> Path:
    target = dest / "impextech"
    shutil.copytree(SRC, target, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in VARIANTS.get(variant, []):
        path = target / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"whatif: variant {variant!r} no longer applies to {rel}")
        path.write_text(text.replace(old, new))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variant", choices=sorted([*VARIANTS, *RUNTIME]), required=True)
    ap.add_argument("--workdir", type=Path, help="where to put the copy (default: the temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="impextech-whatif-", dir=args.workdir) as tmp:
        sys.path.insert(0, str(patched_copy(args.variant, Path(tmp))))
        from impextech.platform import cli

        if not str(cli.__file__).startswith(tmp):
            raise SystemExit(f"whatif: imported {cli.__file__}, not the patched copy")
        if args.variant in RUNTIME:
            RUNTIME[args.variant]()
        print(f"whatif: serving variant {args.variant} from {tmp}", flush=True)
        sys.argv = ["impextech", "serve"]
        cli.main()


if __name__ == "__main__":
    main()
