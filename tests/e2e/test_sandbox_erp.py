"""The sandbox ERP over real HTTP on 127.0.0.1: records, idempotency keys, faults and controls."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from impextech.platform import cli
from impextech.sandbox.erp import ErpState, FaultError, Faults, create_app, parse_latency
from impextech.sandbox.server import serving
from tests.e2e.conftest import CLI

pytestmark = pytest.mark.anyio

PRODUCT = "/accounts/acme/products/p-1"


@pytest.fixture
async def erp() -> AsyncIterator[tuple[httpx.AsyncClient, ErpState]]:
    state = ErpState()
    async with (
        serving(create_app(state)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client, state


async def control(client: httpx.AsyncClient, **settings: object) -> dict[str, Any]:
    response = await client.post("/_control", json=settings)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stats(client: httpx.AsyncClient) -> dict[str, int]:
    response = await client.get("/_stats")
    assert response.status_code == 200
    body: dict[str, int] = response.json()
    return body


# -- records ---------------------------------------------------------------------------------


async def test_a_record_is_created_then_updated_and_read_back(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    first = await client.put(PRODUCT, json={"version": 1, "name": "Tent"})
    assert first.status_code == 201
    assert first.json()["revision"] == 1
    assert first.json()["applied"] is True
    second = await client.put(PRODUCT, json={"version": 2, "name": "Storm Tent"})
    assert second.status_code == 200
    assert second.json()["revision"] == 2
    read = await client.get(PRODUCT)
    assert read.status_code == 200
    assert read.json()["record"] == {"version": 2, "name": "Storm Tent"}
    assert read.json()["revision"] == 2
    await client.put("/accounts/acme/products/p-0", json={"name": "Stove"})
    await client.put("/accounts/globex/products/p-9", json={"name": "Other tenant"})
    listing = await client.get("/accounts/acme/products")
    assert [item["ref"] for item in listing.json()["items"]] == ["p-0", "p-1"]
    missing = await client.get("/accounts/acme/products/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_an_older_version_never_overwrites_a_newer_one(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    await client.put(PRODUCT, json={"version": 3, "name": "new"})
    late = await client.put(PRODUCT, json={"version": 2, "name": "old"})
    assert late.status_code == 200
    assert late.json()["applied"] is False
    assert (await client.get(PRODUCT)).json()["record"] == {"version": 3, "name": "new"}
    assert (await stats(client))["stale"] == 1


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [(b"{not json", 400, "malformed-json"), (b"[1, 2]", 422, "not-an-object")],
)
async def test_a_body_that_is_not_a_json_object_is_refused_and_changes_nothing(
    erp: tuple[httpx.AsyncClient, ErpState], body: bytes, status: int, problem: str
) -> None:
    client, state = erp
    response = await client.put(PRODUCT, content=body, headers={"Idempotency-Key": "k"})
    assert response.status_code == status
    assert response.json()["type"].endswith("/" + problem)
    assert state.records == {}
    assert state.answers == {}


# -- idempotency -----------------------------------------------------------------------------


async def test_the_same_key_and_body_replays_the_first_answer_and_applies_once(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    headers = {"Idempotency-Key": "acme:p-1:1"}
    first = await client.put(PRODUCT, json={"version": 1, "a": 1, "b": 2}, headers=headers)
    # The same JSON written differently is the same request.
    again = await client.put(PRODUCT, content=b'{ "b": 2, "a": 1, "version": 1 }', headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    counters = await stats(client)
    assert counters["applied"] == 1
    assert counters["replayed"] == 1
    assert (await client.get(PRODUCT)).json()["revision"] == 1


async def test_the_same_key_with_another_body_is_422_and_changes_nothing(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    headers = {"Idempotency-Key": "k-1"}
    await client.put(PRODUCT, json={"version": 1}, headers=headers)
    before = (await client.get(PRODUCT)).json()
    other_body = await client.put(PRODUCT, json={"version": 2}, headers=headers)
    other_path = await client.put(
        "/accounts/acme/products/p-2", json={"version": 1}, headers=headers
    )
    for response in (other_body, other_path):
        assert response.status_code == 422
        assert response.json()["type"].endswith("/idempotency-key-reused")
    assert (await client.get(PRODUCT)).json() == before
    assert (await client.get("/accounts/acme/products/p-2")).status_code == 404
    assert (await stats(client))["key_conflicts"] == 2


async def test_a_malformed_key_is_refused(erp: tuple[httpx.AsyncClient, ErpState]) -> None:
    client, state = erp
    response = await client.put(PRODUCT, json={}, headers={"Idempotency-Key": "has space"})
    assert response.status_code == 400
    assert state.records == {}


# -- faults ----------------------------------------------------------------------------------


async def test_latency_delays_every_partner_answer_but_not_the_controls(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, state = erp
    await control(client, latency=1.0)
    started = time.monotonic()
    assert (await client.put(PRODUCT, json={})).status_code == 201
    assert time.monotonic() - started >= 1.0
    # The controls are not delayed: answered while a partner request (a minute's latency) is
    # still being held, whatever the machine's load, with no wall-clock bound to miss.
    await control(client, latency=60.0)
    held = asyncio.create_task(client.get(PRODUCT, timeout=120))
    try:
        for _ in range(1200):
            if state.stats.in_flight:
                break
            await asyncio.sleep(0.05)
        assert (await client.get("/_stats")).json()["in_flight"] == 1
        assert (await client.get("/_control")).status_code == 200
        assert not held.done()
    finally:
        held.cancel()


async def test_a_latency_range_draws_from_the_range(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, state = erp
    await control(client, latency=[0.1, 0.3], seed=5)
    delays = [state.draw()[0] for _ in range(200)]
    assert all(0.1 <= d <= 0.3 for d in delays)
    assert max(delays) - min(delays) > 0.1
    started = time.monotonic()
    await client.get(PRODUCT)
    assert time.monotonic() - started >= 0.1


async def test_an_error_fault_answers_503_and_applies_nothing(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, state = erp
    await control(client, error_rate=1)
    response = await client.put(PRODUCT, json={"version": 1}, headers={"Idempotency-Key": "e"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert state.records == {}
    # The failure was not remembered under the key: a retry after recovery is applied.
    await control(client, error_rate=0)
    retry = await client.put(PRODUCT, json={"version": 1}, headers={"Idempotency-Key": "e"})
    assert retry.status_code == 201
    counters = await stats(client)
    assert (counters["errors_injected"], counters["applied"]) == (1, 1)


async def test_a_drop_closes_the_connection_unanswered_after_applying_and_the_key_replays(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    await control(client, drop_rate=1)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await client.put(PRODUCT, json={"version": 1}, headers={"Idempotency-Key": "d"})
    await control(client, drop_rate=0)
    retry = await client.put(PRODUCT, json={"version": 1}, headers={"Idempotency-Key": "d"})
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    counters = await stats(client)
    assert (counters["drops_injected"], counters["applied"], counters["replayed"]) == (1, 1, 1)


async def test_a_timeout_fault_holds_the_request_past_the_client_and_applies_nothing(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, state = erp
    await control(client, timeout_rate=1, hold=60)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await client.put(PRODUCT, json={}, timeout=httpx.Timeout(5, read=0.5))
    # Never before the client's timeout; that it gave up long before the 60 s hold is shown by
    # the request still being in flight, not by a wall-clock bound a loaded machine can miss.
    assert time.monotonic() - started >= 0.5
    assert state.records == {}
    counters = await stats(client)
    assert (counters["timeouts_injected"], counters["in_flight"]) == (1, 1)


async def test_the_same_seed_gives_the_same_faults(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp

    async def run() -> list[int]:
        await control(client, error_rate=0.5, seed=7)
        return [(await client.get(PRODUCT)).status_code for _ in range(20)]

    first, second = await run(), await run()
    assert first == second
    assert set(first) == {404, 503}


async def test_hundreds_of_slow_requests_wait_together(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    # Long enough that connecting all 400 (slow on a loaded machine) ends well before the first
    # answer; the claim is how many wait at once, which no amount of load makes smaller.
    await control(client, latency=5)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=str(client.base_url), limits=limits, timeout=120) as many:
        answers = await asyncio.gather(
            *(many.put(f"/accounts/acme/products/p-{i}", json={}) for i in range(400))
        )
    assert [a.status_code for a in answers] == [201] * 400
    # Served one at a time, or by a pool of 40 workers, at most 1 or 40 would be in flight;
    # sleeping requests cost nothing, so nearly all of them wait at once.
    assert (await stats(client))["max_in_flight"] >= 300


# -- controls --------------------------------------------------------------------------------


async def test_control_reports_and_changes_faults(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    changed = await control(client, latency=[0.1, 0.2], drop_rate=0.25, seed=3)
    assert changed == {
        "latency": [0.1, 0.2],
        "error_rate": 0.0,
        "timeout_rate": 0.0,
        "drop_rate": 0.25,
        "hold": 300.0,
        "seed": 3,
    }
    # Fields not sent keep their values.
    assert (await control(client, error_rate=0.5))["drop_rate"] == 0.25
    assert (await client.get("/_control")).json()["error_rate"] == 0.5


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{", 400, None),
        (b'"drop_rate"', 422, None),
        (b'{"drop_rate": 1.5}', 422, "drop_rate"),
        (b'{"drop_rate": "0.5"}', 422, "drop_rate"),
        (b'{"error_rate": true}', 422, "error_rate"),
        (b'{"error_rate": 0.6, "timeout_rate": 0.6}', 422, "error_rate"),
        (b'{"latency": [2, 1]}', 422, "latency"),
        (b'{"latency": [1]}', 422, "latency"),
        (b'{"latency": -1}', 422, "latency"),
        (b'{"hold": 0}', 422, "hold"),
        (b'{"seed": 1.5}', 422, "seed"),
        (b'{"drop_rate": 0.5, "latncy": 1}', 422, "latncy"),
    ],
)
async def test_bad_control_input_is_a_problem_and_changes_nothing(
    erp: tuple[httpx.AsyncClient, ErpState], body: bytes, status: int, field: str | None
) -> None:
    client, _ = erp
    await control(client, error_rate=0.1, seed=9)
    before = (await client.get("/_control")).json()
    response = await client.post("/_control", content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    if field is not None:
        assert problem["errors"][0]["path"] == [field]
    assert (await client.get("/_control")).json() == before


async def test_a_reset_during_a_request_keeps_counting_it(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    await control(client, latency=0.5)
    slow = asyncio.create_task(client.put(PRODUCT, json={}))
    for _ in range(100):
        if (await stats(client))["in_flight"]:
            break
        await asyncio.sleep(0.01)
    assert (await client.post("/_reset")).status_code == 204
    assert (await stats(client))["in_flight"] == 1
    assert (await slow).status_code == 201
    after = await stats(client)
    assert (after["in_flight"], after["applied"], after["requests"]) == (0, 1, 0)


async def test_reset_forgets_records_keys_and_counters_but_keeps_faults(
    erp: tuple[httpx.AsyncClient, ErpState],
) -> None:
    client, _ = erp
    await client.put(PRODUCT, json={}, headers={"Idempotency-Key": "r"})
    await control(client, latency=0.01)
    assert (await client.post("/_reset")).status_code == 204
    assert (await client.get("/_stats")).json()["records"] == 0
    assert (await stats(client))["requests"] == 0
    assert (await client.get("/_control")).json()["latency"] == [0.01, 0.01]
    again = await client.put(PRODUCT, json={"other": True}, headers={"Idempotency-Key": "r"})
    assert again.status_code == 201


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [str(CLI), "sandbox", "erp", "--port", "0", "--latency", "0.05-0.1", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:(\d+)) ", line)
        assert found, line
        assert int(found.group(2)) > 0
        yield process, found.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


async def test_the_command_announces_its_port_serves_and_stops_on_sigterm(
    sandbox_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = sandbox_process
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/_control")).json()["latency"] == [0.05, 0.1]
        assert (await client.get("/_control")).json()["seed"] == 4
        assert (await client.put(PRODUCT, json={"version": 1})).status_code == 201
        await control(client, timeout_rate=1)
        held = asyncio.create_task(client.get(PRODUCT, timeout=30))
        for _ in range(200):
            if (await stats(client))["timeouts_injected"]:
                break
            await asyncio.sleep(0.05)
        # A held request (held for the default 300 s) does not keep a stopping sandbox alive:
        # it exits within a fifth of the hold however loaded the machine is.
        process.send_signal(signal.SIGTERM)
        # Uvicorn re-raises the signal once it has shut down, so the exit reports it.
        assert await asyncio.to_thread(process.wait, 60) == -signal.SIGTERM
        with pytest.raises(httpx.TransportError):
            await held


BAD_FLAGS = [
    (["--latency", "fast"], "Invalid value for '--latency': seconds as N or MIN-MAX"),
    (["--latency", "2-1"], "Invalid value for '--latency'"),
    (["--drop-rate", "1.5"], "Invalid value for '--drop-rate'"),
    (["--error-rate", "0.6", "--timeout-rate", "0.6"], "rates add up to 1.2 > 1"),
    (["--port", "70000"], "Invalid value for '--port'"),
    (["--hold", "0"], "Invalid value for '--hold'"),
]


def test_a_bad_flag_is_one_line_and_exit_2_from_the_installed_command() -> None:
    flags, message = BAD_FLAGS[0]
    result = subprocess.run(
        [str(CLI), "sandbox", "erp", *flags], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("impextech: error: ")
    assert message in result.stderr


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_bad_flags_are_one_line_and_exit_2(
    flags: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # In-process (an interpreter per case costs seconds): the same main() the command runs.
    monkeypatch.setattr(sys, "argv", ["impextech", "sandbox", "erp", *flags])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("impextech: error: ")
    assert message in lines[0]


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(CLI), "sandbox", "erp", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"impextech: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", (0.0, 0.0)), ("8", (8.0, 8.0)), ("1e-3", (0.001, 0.001)), ("0.2-1.5", (0.2, 1.5))],
)
def test_latency_flags_are_fixed_or_a_range(raw: str, expected: tuple[float, float]) -> None:
    assert parse_latency(raw) == expected


@pytest.mark.parametrize("raw", ["", "fast", "1-", "-1", "1-2-3", "nan"])
def test_latency_flags_that_are_not_seconds_are_refused(raw: str) -> None:
    def faults(flag: str) -> Faults:
        low, high = parse_latency(flag)
        return Faults(latency_min=low, latency_max=high)

    with pytest.raises(FaultError, match="latency"):
        faults(raw)
