"""Password reset tokens: single use, short lived, stored only as a hash.

A token is derived, not drawn: ``HMAC-SHA256(secret key, seed)`` for a 256-bit random seed. The
database keeps the token's SHA-256 and the mail job keeps the seed, so the job that writes the
e-mail can rebuild the link, while a copy of the database (a backup, a read replica, the job
queue) holds nothing that opens an account without the application's secret key as well.
Like refresh tokens, a token starts with its tenant, so its lookup runs under that tenant's RLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from impextech.identity.domain.errors import InvalidResetToken

RESET_LIFETIME = timedelta(minutes=30)
SEED_BYTES = 32
_PURPOSE = b"impextech/password-reset/v1\x00"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode_seed(seed: bytes) -> str:
    return _b64(seed)


def decode_seed(text: str) -> bytes:
    try:
        seed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise ValueError("the seed is not base64url") from None
    if len(seed) != SEED_BYTES:
        raise ValueError("the seed has the wrong length")
    return seed


def reset_token(key: bytes, tenant_id: UUID, seed: bytes) -> str:
    """The token a seed stands for; only a holder of ``key`` can compute it."""
    mac = hmac.new(key, _PURPOSE + tenant_id.bytes + seed, hashlib.sha256).digest()
    return f"{tenant_id.hex}.{_b64(mac)}"


def hash_reset_token(token: str) -> bytes:
    # 256 bits of entropy: a fast hash is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).digest()


def tenant_of_reset_token(token: str) -> UUID:
    prefix, _, secret = token.partition(".")
    try:
        if len(prefix) != 32 or len(secret) != 43:
            raise ValueError
        return UUID(hex=prefix)
    except ValueError:
        raise InvalidResetToken() from None


@dataclass(frozen=True, slots=True)
class PasswordResetRecord:
    id: UUID
    tenant_id: UUID
    user_id: UUID
    token_hash: bytes
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at
