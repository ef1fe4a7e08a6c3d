"""Tenants, users and sessions: plain data with the rules that guard them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from impextech.kernel.domain.errors import FieldIssue, InvalidInput
from impextech.kernel.domain.principal import Role

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset({"www", "api", "admin", "app", "console", "static", "docs", "mail"})


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


def validate_slug(slug: str) -> str:
    if not SLUG_PATTERN.fullmatch(slug) or "--" in slug or slug in RESERVED_SLUGS:
        raise InvalidInput(
            f"invalid tenant slug {slug!r}",
            [
                FieldIssue(
                    ("slug",), "3-40 lowercase letters, digits or single hyphens; not reserved"
                )
            ],
        )
    return slug


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    slug: str
    name: str
    status: TenantStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    tenant_id: UUID
    email: str
    display_name: str
    role: Role
    status: UserStatus
    password_hash: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_active(self) -> bool:
        return self.status is UserStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A stored refresh token: only its hash is ever kept."""

    id: UUID
    tenant_id: UUID
    session_id: UUID
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    session_revoked: bool
    session_expires_at: datetime


def new_user(
    *,
    tenant_id: UUID,
    email: str,
    display_name: str,
    role: Role,
    password_hash: str,
    now: datetime,
) -> User:
    """The one way an account comes into being: active, with a fresh id, created now."""
    return User(
        id=uuid4(),
        tenant_id=tenant_id,
        email=normalise_email(email),
        display_name=display_name.strip(),
        role=role,
        status=UserStatus.ACTIVE,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
    )


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively; the stored form keeps the user's spelling."""
    return email.strip()
