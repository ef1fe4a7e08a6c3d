"""Run GuardDog over many local targets in one process (executed by the GuardDog venv's python).

Reads a JSON list of {"target": PATH, "ecosystem": "npm"|"pypi"} on stdin, prints one JSON line
per target: label, issues, rules that matched, seconds, error.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

PER_TARGET_SECONDS = 120


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def main() -> None:
    from guarddog.scanners import get_package_scanner  # type: ignore[import-not-found]

    jobs: list[dict[str, str]] = json.load(sys.stdin)
    signal.signal(signal.SIGALRM, _alarm)
    scanners: dict[str, Any] = {}
    for job in jobs:
        eco = job["ecosystem"]
        out: dict[str, Any] = {"target": job["target"], "ecosystem": eco}
        start = time.perf_counter()
        signal.alarm(PER_TARGET_SECONDS)
        try:
            if eco not in scanners:
                from guarddog.ecosystems import ECOSYSTEM  # type: ignore[import-not-found]

                scanners[eco] = get_package_scanner(ECOSYSTEM(eco))
            if job["target"].endswith((".zip", ".tar.gz", ".tgz", ".tar")):
                # Archives go through GuardDog's own command line, which knows how to unpack them.
                cli = [sys.executable, "-m", "guarddog", eco, "scan", job["target"]]
                proc = subprocess.run(
                    [*cli, "--output-format", "json", "--no-sandbox"],
                    capture_output=True,
                    text=True,
                    timeout=PER_TARGET_SECONDS,
                )
                result = json.loads(proc.stdout or "{}")
            else:
                result = scanners[eco].scan_local(job["target"])
            matched = sorted(k for k, v in result.get("results", {}).items() if v)
            out.update(
                label=result.get("risk_score", {}).get("label", "unknown"),
                issues=int(result.get("issues", 0)),
                rules=matched,
                error=json.dumps(result.get("errors") or {})[:300],
            )
        except _Timeout:
            out.update(label="timeout", issues=0, rules=[], error="timeout")
        except Exception as exc:  # the peer's own failures are recorded, not fatal
            out.update(label="error", issues=0, rules=[], error=repr(exc)[:300])
        finally:
            signal.alarm(0)
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
