"""The tenant registry as every context may see it: which marketplaces exist and are active.

Identity owns the registry; contexts that act across marketplaces (periodic jobs fanning out to
each one, the operator's dead-letter commands) require this roster instead of reading identity's
tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from impextech.kernel.contexts import Key
from impextech.kernel.domain.principal import TenantRef


class TenantRoster(Protocol):
    async def active_tenants(self) -> Sequence[TenantRef]:
        """Every active marketplace, in a stable order."""
        ...

    async def all_tenants(self) -> Sequence[TenantRef]:
        """Every marketplace, suspended ones too (for the operator), in a stable order."""
        ...

    async def find_tenant(self, slug: str) -> TenantRef | None:
        """A marketplace by slug, active or not; None if there is none."""
        ...


TENANT_ROSTER: Key[TenantRoster] = Key("tenant roster")
