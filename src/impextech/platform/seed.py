"""Demo data: two marketplaces, each with an admin, two sellers, a shopper and ~50 products."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from impextech.catalog.adapters.sql import SqlCatalogUnitOfWork
from impextech.catalog.service.products import CatalogService, NewProduct
from impextech.identity.adapters.argon2_hasher import Argon2PasswordHasher
from impextech.identity.adapters.sql import SqlIdentityUnitOfWork, SqlTenantStore
from impextech.identity.domain.model import User, UserStatus
from impextech.identity.service.tenants import TenantAdmin
from impextech.jobs.api import ProcrastinateQueue
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import SystemClock
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


async def seed_demo(
    owner_db: Database,
    app_db: Database,
    queue: ProcrastinateQueue,
    products_per_tenant: int = 50,
) -> bool:
    """Create the demo data once; False if it was already there."""
    clock = SystemClock()
    tenants = SqlTenantStore(owner_db)
    if await tenants.get_by_slug(DEMO_TENANTS[0][0]) is not None:
        return False
    hasher = Argon2PasswordHasher(2)
    password_hash = await hasher.hash(DEMO_PASSWORD)
    catalog = CatalogService(lambda t: SqlCatalogUnitOfWork(app_db, t, queue), clock)
    rng = random.Random(2026)  # same catalogue on every machine
    for slug, name in DEMO_TENANTS:
        tenant = await TenantAdmin(tenants, clock).create(slug, name)
        sellers: list[Principal] = []
        async with SqlIdentityUnitOfWork(app_db, tenant.id) as uow:
            for who, role, display in DEMO_PEOPLE:
                now = clock.now()
                user = User(
                    id=uuid.uuid4(),
                    tenant_id=tenant.id,
                    email=f"{who}@{slug}.example",
                    display_name=f"{name} {display}",
                    role=role,
                    status=UserStatus.ACTIVE,
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                )
                await uow.users.add(user)
                if role is Role.SELLER:
                    sellers.append(Principal(tenant.id, user.id, role, uuid.uuid4()))
            await uow.commit()
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
