"""Creating accounts: the rules every new account passes, whoever creates it.

Registration (a shopper signing up) and the platform operator's ``create_admin`` check the email
and the password the same way and build the user with the same factory.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from impextech.identity.domain.errors import EmailTaken, UnknownTenant
from impextech.identity.domain.model import User, new_user
from impextech.identity.domain.passwords import check_password
from impextech.identity.service.ports import (
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    TenantStore,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import FieldIssue, InvalidInput
from impextech.kernel.domain.principal import Role

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 100


def account_email(email: str) -> str:
    """The address in its normalised form (domain lower-cased), or InvalidInput."""
    email = email.strip()
    try:
        if len(email) > MAX_EMAIL_LENGTH:
            raise EmailNotValidError(f"use at most {MAX_EMAIL_LENGTH} characters")
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"invalid email: {exc}", [FieldIssue(("body", "email"), str(exc))]
        ) from None


def account_display_name(display_name: str) -> str:
    name = display_name.strip()
    if not name or len(name) > MAX_DISPLAY_NAME_LENGTH or not name.isprintable():
        raise InvalidInput(
            "invalid display name",
            [FieldIssue(("body", "display_name"), "1-100 printable characters on one line")],
        )
    return name


class AccountAdmin:
    """Platform-operator actions on accounts (the command line and the demo's seed)."""

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        tenants: TenantStore,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._tenants = tenants
        self._hasher = hasher
        self._clock = clock

    async def create_admin(
        self, tenant_slug: str, email: str, password: str, display_name: str
    ) -> User:
        """An active admin in the marketplace ``tenant_slug``; EmailTaken if the address is
        already registered there, UnknownTenant, InvalidInput or WeakPassword otherwise."""
        return await self.create_account(tenant_slug, email, password, display_name, Role.ADMIN)

    async def create_account(
        self, tenant_slug: str, email: str, password: str, display_name: str, role: Role
    ) -> User:
        """An active account with ``role``, by the same rules as ``create_admin``."""
        email = account_email(email)
        display_name = account_display_name(display_name)
        check_password(password, email=email, display_name=display_name)
        tenant = await self._tenants.get_by_slug(tenant_slug.strip().lower())
        if tenant is None:
            raise UnknownTenant(f"no marketplace {tenant_slug!r}")
        async with self._uow(tenant.id) as uow:
            taken = await uow.users.email_exists(email)
        if taken:  # before the slow hash; the unique index still decides a race
            raise EmailTaken(f"{email} is already registered in {tenant.slug}")
        user = new_user(
            tenant_id=tenant.id,
            email=email,
            display_name=display_name,
            role=role,
            password_hash=await self._hasher.hash(password),
            now=self._clock.now(),
        )
        async with self._uow(tenant.id) as uow:
            await uow.users.add(user)
            await uow.commit()
        return user
