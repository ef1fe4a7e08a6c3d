"""Serve the app with a suggested fix applied to a throwaway copy of src/, to measure its effect.

    python bench/api/whatif.py --variant one-throttle-tx     # then: like `impextech serve`

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

* ``one-throttle-tx``: a login's two rate-limit hits (per address, per account) run in one
  transaction instead of two, saving a pool checkout, a ``set_config`` and a commit per login.

Earlier variants, now obsolete because src/ changed: ``async-deps`` (landed in 1928faa) and
``fixed-pool`` (SQLAlchemy's pool churned overflow connections; gone with the psycopg pool of
2960fe9).
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
VARIANTS: dict[str, list[tuple[str, str, str]]] = {
    "one-throttle-tx": [
        (
            "identity/service/auth.py",
            """        waits = [
            await self._limiter.hit(
                address_key, self._policy.per_address.limit, self._policy.per_address.window_seconds
            ),
            await self._limiter.hit(
                account_key, self._policy.per_account.limit, self._policy.per_account.window_seconds
            ),
        ]""",
            """        waits = await self._limiter.hit_many(  # type: ignore[attr-defined]
            [
                (address_key, self._policy.per_address.limit,
                 self._policy.per_address.window_seconds),
                (account_key, self._policy.per_account.limit,
                 self._policy.per_account.window_seconds),
            ]
        )""",
        ),
        (
            "identity/adapters/rate_limit.py",
            "    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:",
            """    async def hit_many(self, hits: list[tuple[str, int, int]]) -> list[int | None]:
        waits: list[int | None] = []
        async with self._db.transaction(None) as conn:
            for key, limit, window_seconds in hits:
                digest = hashlib.sha256(key.encode()).hexdigest()
                cur = await conn.execute(_HIT, {"key": digest, "window": window_seconds})
                row = await cur.fetchone()
                assert row is not None
                waits.append(
                    min(window_seconds, max(1, math.ceil(float(row.remaining))))
                    if row.hits > limit
                    else None
                )
        return waits

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:""",
        ),
    ],
}


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
