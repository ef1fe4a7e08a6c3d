"""What identity offers every other context, framework-free: who is calling, which marketplaces
exist, and who an account is now.

It is the kernel's ``Gate`` (the HTTP edge asks it who is calling) and ``TenantRoster`` (periodic
jobs and operator commands ask it which marketplaces there are), and the chess arena's WebSockets
or a payout's role check call ``authenticate`` and ``active_role`` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from impextech.identity.domain.model import Tenant, TenantStatus
from impextech.identity.service.auth import AuthService
from impextech.identity.service.directory import UserDirectory
from impextech.identity.service.ports import TenantStore
from impextech.identity.service.tenants import TenantDirectory
from impextech.kernel.domain.principal import Principal, Role, TenantRef


def _ref(tenant: Tenant) -> TenantRef:
    return TenantRef(tenant.id, tenant.slug)


class Identity:
    def __init__(
        self,
        auth: AuthService,
        tenants: TenantDirectory,
        registry: TenantStore,
        users: UserDirectory,
        base_domains: tuple[str, ...],
    ) -> None:
        self._auth = auth
        self._tenants = tenants
        self._registry = registry
        self._users = users
        self._base_domains = base_domains

    @property
    def base_domains(self) -> tuple[str, ...]:
        return self._base_domains

    async def authenticate(self, access_token: str) -> Principal:
        """The live principal behind an access token (its session and account still active, its
        role read now); ``Unauthenticated`` otherwise."""
        return await self._auth.authenticate(access_token)

    async def active_tenant(self, tenant_id: UUID) -> TenantRef:
        return _ref(await self._tenants.by_id(tenant_id))

    async def active_tenant_named(self, slug: str) -> TenantRef:
        return _ref(await self._tenants.by_slug(slug))

    async def active_tenants(self) -> Sequence[TenantRef]:
        return [_ref(t) for t in await self._registry.list_all() if t.status is TenantStatus.ACTIVE]

    async def all_tenants(self) -> Sequence[TenantRef]:
        return [_ref(t) for t in await self._registry.list_all()]

    async def find_tenant(self, slug: str) -> TenantRef | None:
        tenant = await self._registry.get_by_slug(slug)
        return _ref(tenant) if tenant is not None else None

    async def active_role(self, tenant_id: UUID, user_id: UUID) -> Role | None:
        """The account's role now, if it is active in ``tenant_id``; None otherwise."""
        return await self._users.active_role(tenant_id, user_id)
