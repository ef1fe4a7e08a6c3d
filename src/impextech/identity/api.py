"""The identity context's public facade: what other contexts and the platform may use."""

from impextech.identity.adapters.web_context import (
    AnonymousTenant,
    CurrentPrincipal,
    IdentityWeb,
    OptionalPrincipal,
    StorefrontTenant,
    current_principal,
    optional_principal,
    storefront_tenant,
)

__all__ = [
    "AnonymousTenant",
    "CurrentPrincipal",
    "IdentityWeb",
    "OptionalPrincipal",
    "StorefrontTenant",
    "current_principal",
    "optional_principal",
    "storefront_tenant",
]
