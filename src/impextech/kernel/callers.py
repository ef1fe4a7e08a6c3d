"""Who is calling, and for which marketplace: the FastAPI dependencies every context's routes use.

Anonymous storefront requests name their marketplace by ``X-Tenant`` or by subdomain; an
authenticated request's marketplace comes from its token, and a header or subdomain that names a
different one is refused. The work is done by a ``Gate`` (identity provides it through its
facade: verifying tokens, looking tenants up), stored on ``app.state.gate`` by the platform, so
no context's routes depend on identity's internals.
"""

from __future__ import annotations

from typing import Annotated, Protocol
from uuid import UUID

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from impextech.kernel.contexts import Key
from impextech.kernel.domain.errors import BadRequest, Unauthenticated
from impextech.kernel.domain.principal import Principal, TenantRef


class TenantRequired(BadRequest):
    code = "tenant-required"
    title = "Name the marketplace with an X-Tenant header or its subdomain"


class TenantMismatch(Unauthenticated):
    code = "tenant-mismatch"
    title = "The token belongs to another marketplace"


class Gate(Protocol):
    """Authentication and tenant look-ups, framework-free (identity's facade offers one)."""

    @property
    def base_domains(self) -> tuple[str, ...]: ...

    async def authenticate(self, access_token: str) -> Principal:
        """The live principal behind an access token, or ``Unauthenticated``."""
        ...

    async def active_tenant(self, tenant_id: UUID) -> TenantRef:
        """An active marketplace by id, or a ``NotFound``."""
        ...

    async def active_tenant_named(self, slug: str) -> TenantRef:
        """An active marketplace by slug, or a ``NotFound``."""
        ...


def gate_of(request: Request) -> Gate:
    # Read from app.state directly rather than through another dependency: every node FastAPI
    # resolves costs time on each request, and these run on every request.
    gate: Gate = request.app.state.gate
    return gate


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


def bind_caller(request: Request, tenant_id: UUID, user_id: UUID | None = None) -> None:
    """Record the caller on the request and in every log line it writes."""
    request.state.tenant_id = str(tenant_id)
    structlog.contextvars.bind_contextvars(tenant_id=str(tenant_id))
    if user_id is not None:
        request.state.user_id = str(user_id)
        structlog.contextvars.bind_contextvars(user_id=str(user_id))


async def named_slug(request: Request, x_tenant: TenantHeader = None) -> str | None:
    """The marketplace the request names by header or subdomain, if any (parsed once)."""
    return requested_slug(request, x_tenant, gate_of(request).base_domains)


NamedSlug = Annotated[str | None, Depends(named_slug)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials, slug: str | None
) -> Principal:
    gate = gate_of(request)
    principal = await gate.authenticate(credentials.credentials)
    tenant = await gate.active_tenant(principal.tenant_id)
    if slug is not None and slug != tenant.slug:
        raise TenantMismatch()
    bind_caller(request, principal.tenant_id, principal.user_id)
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


async def anonymous_tenant(request: Request, slug: NamedSlug) -> TenantRef:
    """For sign-up and sign-in: the tenant named by header or subdomain, never by a token."""
    if slug is None:
        raise TenantRequired()
    tenant = await gate_of(request).active_tenant_named(slug)
    bind_caller(request, tenant.id)
    return tenant


async def storefront_tenant(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    slug: NamedSlug,
) -> TenantRef:
    """The marketplace a request acts in: the token's, or else the header's or subdomain's."""
    if principal is not None:
        return await gate_of(request).active_tenant(principal.tenant_id)
    return await anonymous_tenant(request, slug)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
StorefrontTenant = Annotated[TenantRef, Depends(storefront_tenant)]
AnonymousTenant = Annotated[TenantRef, Depends(anonymous_tenant)]


GATE: Key[Gate] = Key("gate")
