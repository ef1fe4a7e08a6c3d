"""Opaque, signed pagination cursors bound to one tenant and one query shape.

A cursor minted in one tenant, or for another sort order, is refused rather than trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from uuid import UUID

from impextech.kernel.domain.errors import FieldIssue, InvalidInput

_BAD = InvalidInput("the cursor is not valid here", [FieldIssue(("query", "cursor"), "invalid")])


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"impextech-cursor\0" + secret).digest()

    def encode(self, tenant_id: UUID | None, shape: str, position: list[object]) -> str:
        body = json.dumps(
            {"t": str(tenant_id) if tenant_id else None, "s": shape, "p": position},
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).rstrip(b"=").decode()

    def decode(self, cursor: str, tenant_id: UUID | None, shape: str) -> list[object]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            raise _BAD from None
        mac, body = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise _BAD
        data = json.loads(body)
        expected_tenant = str(tenant_id) if tenant_id else None
        if data.get("t") != expected_tenant or data.get("s") != shape:
            raise _BAD
        position = data.get("p")
        if not isinstance(position, list):
            raise _BAD
        return position
