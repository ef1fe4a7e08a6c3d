"""Short-lived JWT access tokens with a pinned algorithm."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from uuid import UUID

import jwt

from impextech.identity.domain.errors import InvalidToken
from impextech.identity.service.ports import AccessClaims
from impextech.kernel.domain.principal import Role

ALGORITHM = "HS256"  # pinned: the header's "alg" is never trusted
ISSUER = "impextech"
MAX_LIFETIME_SECONDS = 15 * 60


class JwtAccessTokenCodec:
    def __init__(self, secret: bytes, lifetime_seconds: int = MAX_LIFETIME_SECONDS) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        if not 0 < lifetime_seconds <= MAX_LIFETIME_SECONDS:
            raise ValueError(f"access tokens live at most {MAX_LIFETIME_SECONDS} s")
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds

    def issue(self, tenant_id: UUID, user_id: UUID, role: Role, session_id: UUID) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "sid": str(session_id),
            "roles": [role.value],
            "jti": secrets.token_urlsafe(12),
            "iat": now,
            "exp": now + self.lifetime_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "tid", "sid", "jti", "roles"]},
                leeway=5,
            )
            roles = claims["roles"]
            if not isinstance(roles, list) or len(roles) != 1:
                raise InvalidToken("malformed roles claim")
            return AccessClaims(
                tenant_id=UUID(claims["tid"]),
                user_id=UUID(claims["sub"]),
                role=Role(roles[0]),
                session_id=UUID(claims["sid"]),
                token_id=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the access token has expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise InvalidToken("the access token is not valid") from None
