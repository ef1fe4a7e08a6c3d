"""Two marketplaces with one user per role, made fast for tests (one argon2 hash per process)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import psycopg

from impextech.identity.adapters.argon2_hasher import owasp_argon2

PASSWORD = "correct-horse-battery-staple-42"
ROLES = ("admin", "seller", "seller2", "shopper")


@functools.cache
def password_hash() -> str:
    return owasp_argon2().hash(PASSWORD)


@dataclass
class Account:
    id: uuid.UUID
    email: str
    role: str
    tenant_slug: str
    access_token: str = ""
    refresh_token: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    accounts: dict[str, Account] = field(default_factory=dict)

    def __getitem__(self, role: str) -> Account:
        return self.accounts[role]


def make_tenant(owner: str, slug: str) -> Tenant:
    tenant = Tenant(uuid.uuid4(), slug)
    now = datetime.now(UTC)
    with psycopg.connect(owner) as conn:
        conn.execute(
            "INSERT INTO tenants (id, slug, name, status, created_at)"
            " VALUES (%s, %s, %s, 'active', %s)",
            (tenant.id, slug, slug.title(), now),
        )
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        for who in ROLES:
            role = "seller" if who == "seller2" else who
            account = Account(uuid.uuid4(), f"{who}@{slug}.example", role, slug)
            conn.execute(
                "INSERT INTO users (tenant_id, id, email, display_name, role, status,"
                " password_hash, created_at, updated_at)"
                " VALUES (%s,%s,%s,%s,%s,'active',%s,%s,%s)",
                (
                    tenant.id,
                    account.id,
                    account.email,
                    who.title(),
                    role,
                    password_hash(),
                    now,
                    now,
                ),
            )
            tenant.accounts[who] = account
    return tenant


async def login(client: httpx.AsyncClient, account: Account) -> Account:
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": account.email, "password": PASSWORD},
        headers={"X-Tenant": account.tenant_slug},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    account.access_token = body["access_token"]
    account.refresh_token = body["refresh_token"]
    return account


async def make_product(
    client: httpx.AsyncClient, seller: Account, sku: str, **fields: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "sku": sku,
        "name": f"Product {sku}",
        "description": "A fine thing",
        "category": "misc",
        "price": {"amount": 1999, "currency": "EUR"},
        "stock": 5,
        **fields,
    }
    response = await client.post("/api/v1/products", json=body, headers=seller.auth)
    assert response.status_code == 201, response.text
    product: dict[str, object] = response.json()
    return product


def insert_product(
    owner: str,
    tenant: Tenant,
    sku: str,
    *,
    seller_id: uuid.UUID | None = None,
    name: str | None = None,
    version: int = 1,
    erp_synced_version: int | None = None,
) -> uuid.UUID:
    """A product written straight into the table in the tenant's context (no web app needed)."""
    product_id = uuid.uuid4()
    now = datetime.now(UTC)
    with psycopg.connect(owner) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO products (id, tenant_id, seller_id, sku, name, description, category,"
            " price_amount, currency, stock, status, version, created_at, updated_at,"
            " erp_synced_version)"
            " VALUES (%s, %s, %s, %s, %s, '', 'misc', 1999, 'EUR', 5, 'active', %s, %s, %s, %s)",
            (
                product_id,
                tenant.id,
                seller_id or tenant["seller"].id,
                sku,
                name or f"Product {sku}",
                version,
                now,
                now,
                erp_synced_version,
            ),
        )
    return product_id
