"""Tenant A (acme, the victim) seeded through the API, tenant B (globex, the attacker), and the
tools the attack suite judges with: who calls, what counts as A's data, and A's rows as they are.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg import sql

from impextech.platform.tenancy import global_tables
from tests.support.world import PASSWORD, Account, Tenant, make_product

VICTIM, ATTACKER = "acme", "globex"
ROLES = ("admin", "seller", "shopper")
ANONYMOUS = "anonymous"
CALLERS = (*ROLES, ANONYMOUS)


@dataclass
class Caller:
    """Someone of one tenant calling the API: an account, or nobody (anonymous)."""

    name: str
    tenant: Tenant
    account: Account | None
    password: str = PASSWORD
    via_host: bool = False  # names its marketplace by subdomain instead of X-Tenant

    def headers(self, *, named_tenant: str | None = None) -> dict[str, str]:
        headers = {"X-Tenant": named_tenant or self.tenant.slug}
        if self.account is not None:
            headers.update(self.account.auth)
        return headers

    async def relogin(self, client: httpx.AsyncClient) -> None:
        """A fresh session after an operation ended this one (logout, password change)."""
        if self.account is None:
            return
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": self.account.email, "password": self.password},
            headers={"X-Tenant": self.tenant.slug},
        )
        assert response.status_code == 200, response.text
        self.account.access_token = response.json()["access_token"]
        self.account.refresh_token = response.json()["refresh_token"]


def callers_of(tenant: Tenant) -> dict[str, Caller]:
    out = {role: Caller(role, tenant, tenant[role]) for role in ROLES}
    out[ANONYMOUS] = Caller(ANONYMOUS, tenant, None)
    out[f"{ANONYMOUS}@host"] = Caller(ANONYMOUS, tenant, None, via_host=True)
    return out


@dataclass
class Seeded:
    """What tenant A owns, as the attack needs it, and every string that identifies it."""

    victim: Tenant
    attacker: Tenant
    path_ids: dict[str, list[str]]  # a path parameter's name -> A's ids of that kind
    product_cursor: str
    user_cursor: str
    refresh_token: str
    product_name: str
    product_category: str
    own_product_id: str  # B's, for the positive controls
    owner: str  # the schema owner's connection, to read rows as they are
    markers: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def import_csv(rows: list[tuple[str, str]]) -> bytes:
    """A product import file: (sku, name) per row."""
    lines = ["sku,name,description,category,price_amount,currency,stock"]
    lines += [f"{sku},{name},imported,misc,500,EUR,2" for sku, name in rows]
    return ("\n".join(lines) + "\n").encode()


RESULT_MARKER = "result-of-"
ERROR_MARKER = "error-of-"


def insert_jobs(owner: str, tenant: Tenant) -> list[str]:
    """A dead job and a succeeded one (with a result), started by the tenant's seller."""
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        for job_id, state, result, error in (
            (ids[0], "dead", None, f"{ERROR_MARKER}{tenant.slug}"),
            (ids[1], "succeeded", f'{{"note": "{RESULT_MARKER}{tenant.slug}"}}', None),
        ):
            conn.execute(
                "INSERT INTO jobs (tenant_id, id, kind, queue, state, attempts, max_attempts,"
                " payload, result, last_error, created_by, created_at, updated_at)"
                " VALUES (%s, %s, 'isolation.probe', 'default', %s, 1, 1, '{}', %s, %s, %s,"
                " now(), now())",
                (tenant.id, job_id, state, result, error, tenant["seller"].id),
            )
    return ids


def insert_reset_token(owner: str, tenant: Tenant) -> str:
    """A live password reset token for the tenant's shopper; the raw token (only its hash is
    stored)."""
    token = f"{tenant.id.hex}.{secrets.token_urlsafe(32)}"
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO password_reset_tokens"
            " (tenant_id, id, user_id, token_hash, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, now(), now() + interval '30 minutes')",
            (
                tenant.id,
                uuid.uuid4(),
                tenant["shopper"].id,
                hashlib.sha256(token.encode()).digest(),
            ),
        )
    return token


async def seed(client: httpx.AsyncClient, world: dict[str, Tenant], owner: str) -> Seeded:
    victim, attacker = world[VICTIM], world[ATTACKER]
    name_word = unique("acmesecret")
    category = unique("acmecat")
    products = [
        await make_product(
            client,
            victim[who],
            unique("ACME-").upper(),
            name=f"{name_word} lantern {n}",
            category=category,
        )
        for n, who in enumerate(("seller", "admin", "seller"))
    ]
    page = await client.get("/api/v1/products", params={"limit": "1"}, headers={"X-Tenant": VICTIM})
    users = await client.get("/api/v1/users", params={"limit": "1"}, headers=victim["admin"].auth)
    assert page.status_code == users.status_code == 200, (page.text, users.text)
    own = await make_product(
        client, attacker["seller"], unique("GLOBEX-").upper(), name=unique("globexown")
    )
    seeded = Seeded(
        victim=victim,
        attacker=attacker,
        path_ids={
            "product_id": [str(products[0]["id"])],
            "user_id": [str(victim["seller"].id), str(victim["admin"].id)],
        },
        product_cursor=page.json()["next_cursor"],
        user_cursor=users.json()["next_cursor"],
        refresh_token=victim["shopper"].refresh_token,
        product_name=name_word,
        product_category=category,
        own_product_id=str(own["id"]),
        owner=owner,
    )
    assert seeded.product_cursor
    assert seeded.user_cursor
    for tenant in (victim, attacker):
        jobs = insert_jobs(owner, tenant)
        seeded.extra[f"jobs:{tenant.slug}"] = jobs
        seeded.extra[f"reset_token:{tenant.slug}"] = insert_reset_token(owner, tenant)
    seeded.markers.add(seeded.extra[f"reset_token:{VICTIM}"])
    victim_jobs: list[str] = seeded.extra[f"jobs:{VICTIM}"]
    # Dead (retry and discard would act on it), then one queued through the API by an import.
    imported = await client.post(
        "/api/v1/products/imports",
        content=import_csv([(unique("ACME-IMP-").upper(), f"{name_word} imported")]),
        headers={**victim["seller"].auth, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 202, imported.text
    victim_jobs.append(str(imported.json()["job_id"]))
    seeded.path_ids["job_id"] = [victim_jobs[0], victim_jobs[-1]]
    seeded.markers |= set(victim_jobs) | {RESULT_MARKER + VICTIM, ERROR_MARKER + VICTIM}
    jobs_page = await client.get(
        "/api/v1/jobs", params={"limit": "1"}, headers=victim["admin"].auth
    )
    assert jobs_page.status_code == 200, jobs_page.text
    seeded.extra["job_cursor"] = jobs_page.json()["next_cursor"]
    assert seeded.extra["job_cursor"]
    seeded.markers |= {str(victim.id), name_word, category}
    seeded.extra["victim_sku"] = str(products[0]["sku"])
    for product in products:
        seeded.markers |= {str(product["id"]), str(product["sku"]), str(product["name"])}
    for account in victim.accounts.values():
        seeded.markers |= {str(account.id), account.email, account.refresh_token}
        seeded.markers.add(account.access_token)
    return seeded


def leaked(seeded: Seeded, request: httpx.Request, response: httpx.Response) -> set[str]:
    """A's markers in the response that the request did not itself carry (an echoed path or
    body is the caller's own input, not a leak)."""
    sent = str(request.url) + request.content.decode("utf-8", "replace")
    answer = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return {m for m in seeded.markers if m in answer and m not in sent}


# --- A's rows, byte for byte -------------------------------------------------------------------


def scoped_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Tables with a tenant_id column (from the catalog, so new ones are included)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'"
        " AND t.table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows if str(r[0]) not in global_tables()]


def tenant_rows(owner: str, tenant_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row of one tenant in every scoped table, as text, read under its own context
    (the owner is subject to FORCE ROW LEVEL SECURITY too), plus the tenant registry row and
    the job queue's rows that name the tenant."""
    out: dict[str, list[str]] = {}
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        for table in scoped_tables(conn):
            query = sql.SQL("SELECT t::text FROM {} t ORDER BY 1").format(sql.Identifier(table))
            out[table] = [str(r[0]) for r in conn.execute(query).fetchall()]
        out["tenants"] = [
            str(r[0])
            for r in conn.execute(
                "SELECT t::text FROM tenants t WHERE id = %s", (tenant_id,)
            ).fetchall()
        ]
        if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() != (None,):
            out["procrastinate_jobs"] = [
                str(r[0])
                for r in conn.execute(
                    "SELECT j::text FROM procrastinate_jobs j"
                    " WHERE strpos(j.args::text, %s) > 0 ORDER BY 1",
                    (str(tenant_id),),
                ).fetchall()
            ]
    return out
