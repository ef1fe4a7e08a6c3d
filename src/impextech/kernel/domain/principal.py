"""Who is acting, and in which tenant: the context every use case receives."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from uuid import UUID

from impextech.kernel.domain.errors import Forbidden


class Role(enum.StrEnum):
    SHOPPER = "shopper"
    SELLER = "seller"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user acting inside exactly one tenant."""

    tenant_id: UUID
    user_id: UUID
    role: Role
    session_id: UUID

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self) -> None:
        """Refuse (403) anyone but a marketplace admin: the one role check every context uses."""
        if not self.is_admin:
            raise Forbidden("only a marketplace admin may do this")


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: UUID
    slug: str
