"""Who is acting, and in which tenant: the context every use case receives."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from uuid import UUID


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


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: UUID
    slug: str
