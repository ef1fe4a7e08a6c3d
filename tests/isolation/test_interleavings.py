"""Random interleavings of calls by users of random tenants: no answer ever carries an
identifier or a name created in another tenant, and another tenant's ids always answer 404."""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.isolation.battlefield import ANONYMOUS, CALLERS, Caller, callers_of, import_csv
from tests.support.world import Tenant

pytestmark = pytest.mark.anyio

SLUGS = ("acme", "globex")
ACTIONS = (
    "create_product",
    "list_products",
    "search_other",
    "get_other_product",
    "get_own_product",
    "register",
    "list_users",
    "get_other_user",
    "list_jobs",
    "import_products",
    "get_other_job",
)
WORDS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
STEP = st.tuples(st.sampled_from(SLUGS), st.sampled_from(CALLERS), st.sampled_from(ACTIONS), WORDS)


@dataclass
class Ledger:
    """What each tenant created, across every example of the test."""

    markers: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SLUGS})
    names: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SLUGS})
    products: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SLUGS})
    users: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SLUGS})
    jobs: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SLUGS})
    requests: int = 0


@pytest.fixture
def ledger(world: dict[str, Tenant]) -> Ledger:
    out = Ledger()
    for slug, tenant in world.items():
        for account in tenant.accounts.values():
            out.markers[slug] |= {str(account.id), account.email}
            out.users[slug].append(str(account.id))
        out.markers[slug].add(str(tenant.id))
    return out


def _other(slug: str) -> str:
    return SLUGS[1 - SLUGS.index(slug)]


async def _call(
    client: httpx.AsyncClient, ledger: Ledger, caller: Caller, method: str, url: str, **kw: object
) -> httpx.Response:
    headers = {**caller.headers(), **kw.pop("headers", {})}  # type: ignore[dict-item]
    response = await client.request(method, url, headers=headers, **kw)  # type: ignore[arg-type]
    ledger.requests += 1
    sent = str(response.request.url) + response.request.content.decode()
    foreign = ledger.markers[_other(caller.tenant.slug)]
    leaked = {m for m in foreign if m in response.text and m not in sent}
    assert not leaked, f"{method} {url} as {caller.tenant.slug} {caller.name} leaks {leaked}"
    return response


async def _step(
    client: httpx.AsyncClient,
    ledger: Ledger,
    callers: dict[str, dict[str, Caller]],
    slug: str,
    who: str,
    action: str,
    word: str,
) -> None:
    caller, other = callers[slug][who], _other(slug)
    tag = uuid.uuid4().hex[:10]
    if action == "create_product":
        name = f"{word} {tag}"
        body = {"sku": f"S-{tag}", "name": name, "category": f"c{tag}",
                "price": {"amount": 100, "currency": "EUR"}, "stock": 3}  # fmt: skip
        response = await _call(client, ledger, caller, "POST", "/api/v1/products", json=body)
        expected = {"admin": 201, "seller": 201, "shopper": 403, ANONYMOUS: 401}[who]
        assert response.status_code == expected, response.text
        if response.status_code == 201:
            ledger.markers[slug] |= {response.json()["id"], name, f"S-{tag}", tag}
            ledger.names[slug].append(tag)
            ledger.products[slug].append(response.json()["id"])
    elif action == "list_products":
        response = await _call(client, ledger, caller, "GET", "/api/v1/products?limit=100")
        assert response.status_code == 200, response.text
        # Nothing else exists in this test: every listed product is one this tenant made.
        listed = {p["id"] for p in response.json()["items"]}
        assert listed <= set(ledger.products[slug]), listed - set(ledger.products[slug])
    elif action == "search_other" and ledger.names[other]:
        q = ledger.names[other][len(word) % len(ledger.names[other])]
        response = await _call(client, ledger, caller, "GET", f"/api/v1/products?q={q}")
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
    elif action == "get_other_product" and ledger.products[other]:
        target = ledger.products[other][len(word) % len(ledger.products[other])]
        response = await _call(client, ledger, caller, "GET", f"/api/v1/products/{target}")
        assert response.status_code == 404, response.text
    elif action == "get_own_product" and ledger.products[slug]:
        target = ledger.products[slug][len(word) % len(ledger.products[slug])]
        response = await _call(client, ledger, caller, "GET", f"/api/v1/products/{target}")
        assert response.status_code == 200, response.text
    elif action == "register" and who == ANONYMOUS:
        email = f"{word.lower()}.{tag}@example.org"
        name = f"{word} {tag}"
        body = {"email": email, "password": "a long and unusual passphrase", "display_name": name}
        response = await _call(client, ledger, caller, "POST", "/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        user_id = response.json()["user"]["id"]
        ledger.markers[slug] |= {user_id, email, name, tag}
        ledger.users[slug].append(user_id)
    elif action == "list_users":
        response = await _call(client, ledger, caller, "GET", "/api/v1/users?limit=100")
        expected = {"admin": 200, "seller": 403, "shopper": 403, ANONYMOUS: 401}[who]
        assert response.status_code == expected, response.text
    elif action == "get_other_user" and who != ANONYMOUS:
        target = ledger.users[other][len(word) % len(ledger.users[other])]
        response = await _call(client, ledger, caller, "GET", f"/api/v1/users/{target}")
        assert response.status_code == 404, response.text
    elif action == "import_products":
        sku, name = f"I-{tag}", f"{word} {tag}"
        response = await _call(
            client, ledger, caller, "POST", "/api/v1/products/imports",
            content=import_csv([(sku, name)]), headers={"Content-Type": "text/csv"},
        )  # fmt: skip
        expected = {"admin": 202, "seller": 202, "shopper": 403, ANONYMOUS: 401}[who]
        assert response.status_code == expected, response.text
        if response.status_code == 202:
            job_id = response.json()["job_id"]
            ledger.markers[slug] |= {job_id, sku, name, tag}
            ledger.jobs[slug].append(job_id)
    elif action == "get_other_job" and ledger.jobs[other]:
        target = ledger.jobs[other][len(word) % len(ledger.jobs[other])]
        response = await _call(client, ledger, caller, "GET", f"/api/v1/jobs/{target}")
        assert response.status_code == (401 if who == ANONYMOUS else 404), response.text
    elif action == "list_jobs":
        response = await _call(client, ledger, caller, "GET", "/api/v1/jobs")
        expected = {"admin": 200, "seller": 403, "shopper": 403, ANONYMOUS: 401}[who]
        assert response.status_code == expected, response.text


@settings(
    max_examples=30,
    deadline=None,
    # The world (two tenants, logged in) is built once and shared by every example on purpose:
    # what each example creates stays, so later examples attack a growing population.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=10))
async def test_no_answer_carries_another_tenants_identifiers_or_names(
    client: httpx.AsyncClient,
    world: dict[str, Tenant],
    ledger: Ledger,
    steps: list[tuple[str, str, str, str]],
) -> None:
    callers = {slug: callers_of(world[slug]) for slug in SLUGS}
    for slug, who, action, word in steps:
        await _step(client, ledger, callers, slug, who, action, word)
