"""What identity's own routes read from a request: their services, and whom limits count.

Who is calling and for which marketplace is the kernel's (``impextech.kernel.callers``): every
context's routes share those dependencies, answered by identity's facade through the ``Gate``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import Request

from impextech.identity.service.auth import AuthService
from impextech.identity.service.tenants import TenantDirectory
from impextech.identity.service.users import UserService
from impextech.kernel.cursors import CursorCodec


@dataclass(frozen=True, slots=True)
class IdentityWeb:
    """The identity services the HTTP edge needs, stored on ``app.state.identity``."""

    auth: AuthService
    users: UserService
    tenants: TenantDirectory
    cursors: CursorCodec


async def identity_web(request: Request) -> IdentityWeb:
    web: IdentityWeb = request.app.state.identity
    return web


def client_address(request: Request) -> str:
    """Whom the per-address limits count: an IPv4 address, or an IPv6 client's /64.

    One IPv6 subscriber usually holds a whole /64 and can pick any address in it, so
    counting single IPv6 addresses would hand out 2**64 budgets. Uvicorn has already put the
    ``X-Forwarded-For`` client here when the peer is a trusted proxy (FORWARDED_ALLOW_IPS).
    """
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
