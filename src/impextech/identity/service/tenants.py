"""Tenant registry use cases: creating marketplaces and resolving them by slug."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from uuid import UUID

from impextech.identity.domain.errors import UnknownTenant
from impextech.identity.domain.model import Tenant, TenantStatus, validate_slug
from impextech.identity.service.ports import TenantStore
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import FieldIssue, InvalidInput


@dataclass(frozen=True, slots=True)
class _Cached:
    tenant: Tenant | None
    expires: float


class TenantDirectory:
    """Resolves slugs and ids to active tenants, with a short in-process cache.

    Tenants change rarely and every anonymous request needs one, so a few seconds of cache
    saves a query per request; suspension takes effect within ``ttl_seconds``.
    """

    def __init__(self, store: TenantStore, ttl_seconds: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._by_slug: dict[str, _Cached] = {}
        self._by_id: dict[UUID, _Cached] = {}

    async def by_slug(self, slug: str) -> Tenant:
        now = time.monotonic()
        hit = self._by_slug.get(slug)
        if hit is None or hit.expires < now:
            tenant = await self._store.get_by_slug(slug) if len(slug) <= 40 else None
            hit = _Cached(tenant, now + self._ttl)
            if len(self._by_slug) > 10_000:
                self._by_slug.clear()
            self._by_slug[slug] = hit
        if hit.tenant is None or hit.tenant.status is not TenantStatus.ACTIVE:
            raise UnknownTenant(f"no active marketplace {slug!r}")
        return hit.tenant

    async def by_id(self, tenant_id: UUID) -> Tenant:
        now = time.monotonic()
        hit = self._by_id.get(tenant_id)
        if hit is None or hit.expires < now:
            hit = _Cached(await self._store.get(tenant_id), now + self._ttl)
            if len(self._by_id) > 10_000:
                self._by_id.clear()
            self._by_id[tenant_id] = hit
        if hit.tenant is None or hit.tenant.status is not TenantStatus.ACTIVE:
            raise UnknownTenant("the marketplace is not active")
        return hit.tenant


class TenantAdmin:
    """Platform-operator actions on the tenant registry (command line only)."""

    def __init__(self, store: TenantStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def find(self, slug: str) -> Tenant | None:
        return await self._store.get_by_slug(slug)

    async def create(self, slug: str, name: str) -> Tenant:
        slug = validate_slug(slug)
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("invalid tenant name", [FieldIssue(("name",), "1-200 characters")])
        tenant = Tenant(
            id=uuid.uuid4(),
            slug=slug,
            name=name,
            status=TenantStatus.ACTIVE,
            created_at=self._clock.now(),
        )
        await self._store.add(tenant)
        return tenant
