"""Who is calling and for which marketplace: FastAPI dependencies every context uses.

Anonymous storefront requests name their tenant by ``X-Tenant`` or by subdomain; an
authenticated request's tenant comes from its token, and a header or subdomain that names a
different tenant is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from impextech.identity.service.auth import AuthService
from impextech.identity.service.tenants import TenantDirectory
from impextech.identity.service.users import UserService
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.domain.errors import TenantMismatch, TenantRequired, Unauthenticated
from impextech.kernel.domain.principal import Principal, TenantRef


@dataclass(frozen=True, slots=True)
class IdentityWeb:
    """The identity services the HTTP edge needs, stored on ``app.state.identity``."""

    auth: AuthService
    users: UserService
    tenants: TenantDirectory
    cursors: CursorCodec
    base_domains: tuple[str, ...]


async def identity_web(request: Request) -> IdentityWeb:
    web: IdentityWeb = request.app.state.identity
    return web


_bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login")

TenantHeader = Annotated[
    str | None,
    Header(
        alias="X-Tenant",
        description="The marketplace's slug (or use its subdomain, e.g. acme.localhost)",
        max_length=64,
    ),
]


def requested_slug(
    request: Request, header: str | None, base_domains: tuple[str, ...]
) -> str | None:
    if header:
        return header.strip().lower()
    host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
    for base in base_domains:
        suffix = "." + base
        if host.endswith(suffix):
            sub = host[: -len(suffix)]
            if sub and "." not in sub:
                return sub
    return None


def _bind(request: Request, tenant_id: object, user_id: object | None = None) -> None:
    request.state.tenant_id = str(tenant_id)
    structlog.contextvars.bind_contextvars(tenant_id=str(tenant_id))
    if user_id is not None:
        request.state.user_id = str(user_id)
        structlog.contextvars.bind_contextvars(user_id=str(user_id))


def _web(request: Request) -> IdentityWeb:
    web: IdentityWeb = request.app.state.identity
    return web


# These dependencies read app.state directly rather than through another dependency: every
# node FastAPI resolves costs time on each request, and these run on every request.


async def named_slug(request: Request, x_tenant: TenantHeader = None) -> str | None:
    """The marketplace the request names by header or subdomain, if any (parsed once)."""
    return requested_slug(request, x_tenant, _web(request).base_domains)


NamedSlug = Annotated[str | None, Depends(named_slug)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials, slug: str | None
) -> Principal:
    web = _web(request)
    principal = await web.auth.authenticate(credentials.credentials)
    tenant = await web.tenants.by_id(principal.tenant_id)
    if slug is not None and slug != tenant.slug:
        raise TenantMismatch()
    _bind(request, principal.tenant_id, principal.user_id)
    return principal


async def current_principal(
    request: Request, credentials: Credentials, slug: NamedSlug
) -> Principal:
    """The authenticated caller; 401 without a live access token."""
    if credentials is None:
        raise Unauthenticated("send an access token as 'Authorization: Bearer …'")
    return await _principal(request, credentials, slug)


async def optional_principal(
    request: Request, credentials: Credentials, slug: NamedSlug
) -> Principal | None:
    if credentials is None:
        return None
    return await _principal(request, credentials, slug)


async def storefront_tenant(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    slug: NamedSlug,
) -> TenantRef:
    """The marketplace a request acts in: the token's, or else the header's or subdomain's."""
    if principal is not None:
        tenant = await _web(request).tenants.by_id(principal.tenant_id)
        return TenantRef(tenant.id, tenant.slug)
    return await anonymous_tenant(request, slug)


async def anonymous_tenant(request: Request, slug: NamedSlug) -> TenantRef:
    """For sign-up and sign-in: the tenant named by header or subdomain, never by a token."""
    if slug is None:
        raise TenantRequired()
    tenant = await _web(request).tenants.by_slug(slug)
    _bind(request, tenant.id)
    return TenantRef(tenant.id, tenant.slug)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
StorefrontTenant = Annotated[TenantRef, Depends(storefront_tenant)]
AnonymousTenant = Annotated[TenantRef, Depends(anonymous_tenant)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
