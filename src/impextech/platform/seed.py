"""Demo data: two marketplaces, each with an admin, two sellers, a shopper and ~50 products."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from impextech.catalog.api import CATALOG, NewProduct
from impextech.identity.api import ACCOUNT_ADMIN, tenant_admin
from impextech.kernel.contexts import Assembly
from impextech.kernel.db import Database
from impextech.kernel.domain.money import Money
from impextech.kernel.domain.principal import Principal, Role

DEMO_PASSWORD = "impextech-demo-2026"  # noqa: S105  (documented demo login)
DEMO_TENANTS = (("acme", "Acme Outfitters"), ("globex", "Globex Home & Garden"))
DEMO_PEOPLE = (
    ("admin", Role.ADMIN, "Admin"),
    ("seller1", Role.SELLER, "First Seller"),
    ("seller2", Role.SELLER, "Second Seller"),
    ("shopper", Role.SHOPPER, "Shopper"),
)
_ADJECTIVES = ("Classic", "Rugged", "Compact", "Deluxe", "Organic", "Wireless", "Vintage", "Smart")
_ITEMS = {
    "outdoor": ("Tent", "Backpack", "Headlamp", "Sleeping Bag", "Trekking Poles", "Water Filter"),
    "kitchen": ("Chef Knife", "Cast Iron Pan", "Coffee Grinder", "Teapot", "Cutting Board"),
    "garden": ("Pruning Shears", "Watering Can", "Seed Kit", "Raised Bed", "Hose Reel"),
    "electronics": ("Speaker", "Headphones", "Power Bank", "Desk Lamp", "Keyboard"),
}


@dataclass(frozen=True)
class DemoLogin:
    tenant: str
    email: str
    role: Role


def demo_logins() -> list[DemoLogin]:
    return [
        DemoLogin(slug, f"{who}@{slug}.example", role)
        for slug, _ in DEMO_TENANTS
        for who, role, _ in DEMO_PEOPLE
    ]


async def seed_demo(owner_db: Database, assembly: Assembly, products_per_tenant: int = 50) -> bool:
    """Create the demo data once, through the contexts' own use cases; False if it was there.

    Every product created queues its ERP push, as any seller's would.
    """
    registry = tenant_admin(owner_db, assembly.clock)
    accounts = assembly.require(ACCOUNT_ADMIN)
    catalog = assembly.require(CATALOG)
    if await registry.find(DEMO_TENANTS[0][0]) is not None:
        return False
    rng = random.Random(2026)  # same catalogue on every machine
    for slug, name in DEMO_TENANTS:
        tenant = await registry.create(slug, name)
        sellers: list[Principal] = []
        for who, role, display in DEMO_PEOPLE:
            user = await accounts.create_account(
                slug, f"{who}@{slug}.example", DEMO_PASSWORD, f"{name} {display}", role
            )
            if role is Role.SELLER:
                sellers.append(Principal(tenant.id, user.id, role, uuid.uuid4()))
        for n in range(products_per_tenant):
            category = rng.choice(sorted(_ITEMS))
            item = rng.choice(_ITEMS[category])
            adjective = rng.choice(_ADJECTIVES)
            await catalog.create(
                sellers[n % len(sellers)],
                NewProduct(
                    sku=f"{slug[:3].upper()}-{n + 1:04d}",
                    name=f"{adjective} {item}",
                    description=f"A {adjective.lower()} {item.lower()} from {name}, "
                    f"chosen for {category} lovers.",
                    category=category,
                    price=Money(rng.randrange(299, 49_999), "EUR"),
                    stock=rng.choice((0, 3, 12, 40, 150)),
                ),
            )
    return True
