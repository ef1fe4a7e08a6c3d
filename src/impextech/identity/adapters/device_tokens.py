"""Device tokens: an HMAC-signed note that this client once signed in to this account.

The token grants nothing by itself (it is no session); it only lets its holder be judged
against its own small failure budget instead of the account's budget for strangers, so that
an attacker's wrong guesses do not lock the owner out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from uuid import UUID

from impextech.identity.service.ports import DeviceClaim

_VERSION = "d1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class HmacDeviceTokenCodec:
    def __init__(self, secret: bytes) -> None:
        # A key of its own: a device token must never verify as anything else, nor the reverse.
        self._key = hmac.new(secret, b"impextech/device-token/v1", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, claim: DeviceClaim) -> str:
        micros = (claim.issued_at - _EPOCH) // _MICRO
        payload = f"{_VERSION}.{claim.user_id.hex}.{claim.tenant_id.hex}.{micros}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, token: str) -> DeviceClaim | None:
        if len(token) > 200:
            return None
        payload, _, mac = token.rpartition(".")
        if not hmac.compare_digest(self._mac(payload).encode(), mac.encode()):
            return None
        version, user, tenant, micros = payload.split(".")
        if version != _VERSION:
            return None
        try:
            issued = _EPOCH + int(micros) * _MICRO
            return DeviceClaim(UUID(hex=user), UUID(hex=tenant), issued)
        except (ValueError, OverflowError):
            return None
