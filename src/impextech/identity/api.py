"""The identity context's public facade: what other contexts and the platform may use.

``Identity`` answers who is calling (``authenticate``), which marketplaces exist, and who an
account is now (``active_role``); assembled processes ``require(IDENTITY)`` it. The operator's
account and registry use cases serve the command line and the demo.
"""

from impextech.identity.adapters.sql import SqlTenantStore
from impextech.identity.context import ACCOUNT_ADMIN, IDENTITY
from impextech.identity.domain.errors import EmailTaken, SlugTaken, UnknownTenant
from impextech.identity.domain.model import Tenant, User
from impextech.identity.service.accounts import AccountAdmin
from impextech.identity.service.facade import Identity
from impextech.identity.service.tenants import TenantAdmin
from impextech.kernel.db import Database
from impextech.kernel.domain.clock import Clock


def tenant_admin(owner: Database, clock: Clock) -> TenantAdmin:
    """The registry's use cases over the schema owner's connection (only it may write there)."""
    return TenantAdmin(SqlTenantStore(owner), clock)


__all__ = [
    "ACCOUNT_ADMIN",
    "IDENTITY",
    "AccountAdmin",
    "EmailTaken",
    "Identity",
    "SlugTaken",
    "Tenant",
    "TenantAdmin",
    "UnknownTenant",
    "User",
    "tenant_admin",
]
