"""The attack suite, generated from the live OpenAPI document.

Tenant A (acme) is seeded through the API; then every operation is called by tenant B's admin,
seller and shopper and anonymously with B's ``X-Tenant`` or subdomain. An operation that takes
an id must answer 404 for A's ids, exactly as it answers an id that exists nowhere (so never a
403 that confirms existence); no answer may carry anything of A's; A's rows are byte-for-byte
unchanged afterwards. A's own access tokens presented for B are refused on every operation that
takes one.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from impextech.platform import database
from impextech.platform.app import create_app
from impextech.platform.settings import Settings
from tests.isolation.battlefield import (
    ANONYMOUS,
    ATTACKER,
    ROLES,
    Caller,
    Seeded,
    callers_of,
    leaked,
    seed,
    tenant_rows,
)
from tests.isolation.conftest import record_attack
from tests.isolation.teachings import TEACHINGS, Teaching, Variant
from tests.support.world import Tenant

pytestmark = pytest.mark.anyio

METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
PARAM = re.compile(r"{(\w+)}")


def operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Every operation of the live OpenAPI document, as "METHOD /path" -> its description."""
    out: dict[str, dict[str, Any]] = {}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                out[f"{method.upper()} {path}"] = operation
    return out


def test_every_operation_is_taught_and_nothing_else(settings: Settings) -> None:
    # The document only: nothing connects until a request arrives.
    documented = operations(create_app(settings, "dbname=unused"))
    untaught = sorted(set(documented) - set(TEACHINGS))
    stale = sorted(set(TEACHINGS) - set(documented))
    assert not untaught, f"teach tests/isolation/teachings.py how to attack: {untaught}"
    assert not stale, f"tests/isolation/teachings.py teaches operations that are gone: {stale}"
    for key, operation in documented.items():
        takes_token = bool(operation.get("security"))
        assert TEACHINGS[key].token == takes_token, f"{key}: token={takes_token} in the document"
        for name in PARAM.findall(key):
            assert name in PATH_ID_KINDS, f"{key}: seed one of A's {name!r} in battlefield.seed"


# Path parameters the seeding provides (checked above, so a new kind of id is not skipped).
PATH_ID_KINDS = ("product_id", "user_id", "job_id")


def _url(path: str, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids[m.group(1)], path)


def _request_kwargs(teaching: Teaching, seeded: Seeded, caller: Caller) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if teaching.content is not None:
        content, media_type = teaching.content(seeded, caller)
        kwargs["content"] = content
        kwargs["headers"] = {"Content-Type": media_type}
    elif teaching.body is not None:
        kwargs["json"] = teaching.body(seeded, caller)
    return kwargs


def _problem_type(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        kind: str = response.json().get("type", "")
        return kind.rsplit("/", 1)[-1]
    return None


class Attack:
    def __init__(self, client: httpx.AsyncClient, seeded: Seeded) -> None:
        self.client = client
        self.seeded = seeded
        self.failures: list[str] = []
        self.sent = 0

    async def send(
        self,
        method: str,
        url: str,
        teaching: Teaching,
        caller: Caller,
        query: dict[str, str] | None = None,
        host_tenant: bool = False,
    ) -> httpx.Response:
        kwargs = _request_kwargs(teaching, self.seeded, caller)
        headers = {**teaching.headers, **kwargs.pop("headers", {})}
        if host_tenant or caller.via_host:
            url = f"http://{ATTACKER}.localhost{url}"
            headers.update(caller.account.auth if caller.account else {})
        else:
            headers.update(caller.headers(named_tenant=ATTACKER))
        response = await self.client.request(method, url, params=query, headers=headers, **kwargs)
        self.sent += 1
        how = " by subdomain" if caller.via_host else ""
        where = f"{method} {url} {query or ''} as {caller.tenant.slug} {caller.name}{how}"
        if caller.tenant.slug == ATTACKER and (
            found := leaked(self.seeded, response.request, response)
        ):
            self.failures.append(f"{where}: leaks {sorted(found)} in {response.text[:300]}")
        return response

    def fail(self, message: str) -> None:
        self.failures.append(message)


async def _attack_operation(
    attack: Attack, key: str, teaching: Teaching, callers: dict[str, Caller]
) -> None:
    method, path = key.split(" ", 1)
    takes_id = bool(PARAM.search(path))
    for caller in callers.values():
        for variant in teaching.variants(attack.seeded):
            if takes_id:
                await _attack_by_id(attack, method, path, teaching, caller, variant)
            else:
                await _attack_collection(attack, method, path, teaching, caller, variant)


async def _attack_by_id(
    attack: Attack, method: str, path: str, teaching: Teaching, caller: Caller, variant: Variant
) -> None:
    for ids in _id_sets(path, attack.seeded):
        await _attack_one_id(attack, method, path, ids, teaching, caller, variant)


def _id_sets(path: str, seeded: Seeded) -> list[dict[str, str]]:
    """Each combination of A's ids for the path's parameters."""
    names = PARAM.findall(path)
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(seeded.path_ids[n] for n in names))
    ]


async def _attack_one_id(
    attack: Attack,
    method: str,
    path: str,
    ids: dict[str, str],
    teaching: Teaching,
    caller: Caller,
    variant: Variant,
) -> None:
    query = dict(variant.query)
    nowhere = {name: str(uuid.uuid4()) for name in ids}
    control = await attack.send(method, _url(path, nowhere), teaching, caller, query)
    response = await attack.send(method, _url(path, ids), teaching, caller, query)
    where = f"{method} {_url(path, ids)} {query or ''} as {ATTACKER} {caller.name}"
    got = (response.status_code, _problem_type(response))
    expected = (control.status_code, _problem_type(control))
    if got != expected:
        attack.fail(f"{where}: A's id answers {got}, an unknown id {expected}")
    allowed = {404} | ({401} if caller.name == ANONYMOUS else set())
    # A role refusal that an unknown id gets too confirms nothing; B's admin has no role to
    # be refused for, so it must get the 404.
    if caller.name not in ("admin", ANONYMOUS):
        allowed.add(403)
    if response.status_code not in allowed:
        attack.fail(f"{where}: A's id answers {response.status_code}: {response.text[:200]}")
    await _judge(attack, where, teaching, caller, response)


async def _attack_collection(
    attack: Attack, method: str, path: str, teaching: Teaching, caller: Caller, variant: Variant
) -> None:
    query = dict(variant.query)
    response = await attack.send(method, path, teaching, caller, query)
    where = f"{method} {path} {query or ''} as {ATTACKER} {caller.name}"
    expected = variant.expect.get(caller.name) if variant.expect is not None else None
    if expected is not None and response.status_code not in expected:
        attack.fail(
            f"{where}: answers {response.status_code}, expected"
            f" {sorted(expected)}: {response.text[:200]}"
        )
    if variant.own and teaching.own is not None and response.status_code == 200:
        mine = teaching.own(attack.seeded, caller)
        if mine not in response.text:
            attack.fail(f"{where}: B's own {mine} is missing from {response.text[:200]}")
    await _judge(attack, where, teaching, caller, response)


async def _judge(
    attack: Attack, where: str, teaching: Teaching, caller: Caller, response: httpx.Response
) -> None:
    if teaching.check is not None and (problem := teaching.check(attack.seeded, caller, response)):
        attack.fail(f"{where}: {problem}")
    if teaching.after is not None:
        await teaching.after(attack.client, caller, response)
    elif teaching.ends_session and response.is_success:
        await caller.relogin(attack.client)


def _run_order() -> list[str]:
    """Operations that change the caller's own session go last, so they disturb nothing else."""
    return sorted(
        TEACHINGS,
        key=lambda k: (TEACHINGS[k].ends_session or TEACHINGS[k].after is not None, k),
    )


async def test_tenant_b_reaches_nothing_of_tenant_a_on_any_route(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: dict[str, Tenant],
    clean_db: database.Conninfos,
    request: pytest.FixtureRequest,
) -> None:
    documented = operations(app)
    assert set(documented) == set(TEACHINGS), "see test_every_operation_is_taught_and_nothing_else"
    seeded = await seed(client, world, clean_db.owner)
    before = tenant_rows(clean_db.owner, seeded.victim.id)
    empty = sorted(t for t, rows in before.items() if not rows and t != "procrastinate_jobs")
    assert not empty, f"seed rows of A's in {empty} (battlefield.seed)"
    attack = Attack(client, seeded)
    callers = callers_of(seeded.attacker)

    for key in _run_order():
        sent_before = attack.sent
        await _attack_operation(attack, key, TEACHINGS[key], callers)
        record_attack(request.config, key, attack.sent - sent_before)

    assert not attack.failures, "\n".join(attack.failures)
    assert tenant_rows(clean_db.owner, seeded.victim.id) == before


async def test_a_token_of_tenant_a_is_refused_in_tenant_b_on_every_route(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: dict[str, Tenant],
    clean_db: database.Conninfos,
) -> None:
    seeded = await seed(client, world, clean_db.owner)
    before = tenant_rows(clean_db.owner, seeded.victim.id)
    attack = Attack(client, seeded)
    victims = callers_of(seeded.victim)
    guarded = [key for key, teaching in TEACHINGS.items() if teaching.token]
    assert guarded

    for key in guarded:
        method, path = key.split(" ", 1)
        teaching = TEACHINGS[key]
        url = _url(path, _id_sets(path, seeded)[0])  # A's own ids: refused all the same
        for role in ROLES:
            for on_host in (False, True):
                response = await attack.send(method, url, teaching, victims[role], None, on_host)
                how = "host globex.localhost" if on_host else "X-Tenant: globex"
                got = (response.status_code, _problem_type(response))
                if got != (401, "tenant-mismatch"):
                    attack.fail(f"{key} with A's {role} token and {how}: {got}")

    assert not attack.failures, "\n".join(attack.failures)
    assert tenant_rows(clean_db.owner, seeded.victim.id) == before
