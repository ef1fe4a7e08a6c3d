"""Schema-based fuzzing: every operation of the live OpenAPI document, every check schemathesis
has, anonymous and as an admin, a seller and a shopper, against a real `impextech serve`.

The operations come from the document the server publishes, so a route added later is fuzzed
without this file changing. A failure means the document and the server disagree (or a 5xx):
fix whichever is wrong, never the expectation here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.support.world import PASSWORD, Tenant, make_tenant

ST = Path(sys.executable).with_name("st")
# Bounded and seeded: the same cases every run, about two minutes on two cores for all callers.
EXAMPLES = 12
SEED = 20261202
# Operations that end the caller's sessions run in a pass of their own, after the others, so
# the token stays good for everything else.
SESSION_ENDERS = r"^/api/v1/auth/(logout|logout-all|password)$"


def _token(server: Server, tenant: Tenant, role: str) -> str:
    response = httpx.post(
        f"{server.base_url}/api/v1/auth/login",
        json={"email": tenant[role].email, "password": PASSWORD},
        headers={"X-Tenant": tenant.slug},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# Positive data may also meet 400, 412 and 422; fuzz_checks.py says which 400s and 422s are fair.
CONFIG = """
hooks = "tests.e2e.fuzz_checks"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422", "429"]

# A missing If-Match is answered 428 Precondition Required (RFC 6585), as documented.
[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]
"""
REPO = Path(__file__).resolve().parents[2]


def _fuzz(server: Server, headers: dict[str, str], select: list[str], workdir: Path) -> str:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = [
        str(ST),
        f"--config-file={config}",
        "run",
        f"{server.base_url}/openapi.json",
        "--checks=all",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--workers=1",
        "--no-color",
        "--output-truncate=false",
        "--suppress-health-check=all",
        *select,
    ]
    for name, value in headers.items():
        command.append(f"--header={name}: {value}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "admin", "seller", "shopper"])
def test_the_server_keeps_every_promise_of_its_openapi_document(
    server: Server, caller: str, tmp_path: Path
) -> None:
    # A marketplace per caller: what one fuzzer does (an admin deactivating the ids it finds)
    # stays out of the others' way, and out of the other e2e tests' marketplaces.
    tenant = make_tenant(server.infos.owner, f"fuzz-{caller}")
    headers = {"X-Tenant": tenant.slug}
    if caller != "anonymous":
        headers["Authorization"] = f"Bearer {_token(server, tenant, caller)}"
    first = _fuzz(server, headers, [f"--exclude-path-regex={SESSION_ENDERS}"], tmp_path)
    last = _fuzz(server, headers, [f"--include-path-regex={SESSION_ENDERS}"], tmp_path)
    for output in (first, last):
        assert "No issues found" in output or "passed" in output, output
