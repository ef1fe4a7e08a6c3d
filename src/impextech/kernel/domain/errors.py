"""The one place where the platform's error hierarchy is written down.

Domain and service code raise these; only the HTTP edge turns them into problem+json, using
each class's stable ``code`` (the problem ``type``) and ``status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One invalid field: a path such as ``("body", "price", "amount")`` and what is wrong."""

    path: tuple[str | int, ...]
    message: str


class ImpextechError(Exception):
    """Base of every error the platform raises on purpose."""

    code = "error"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InvalidInput(ImpextechError):
    code = "validation-failed"
    status = 422
    title = "The request is not valid"

    def __init__(self, detail: str, issues: Sequence[FieldIssue] = ()) -> None:
        super().__init__(detail)
        self.issues = tuple(issues)


class WeakPassword(InvalidInput):
    code = "weak-password"
    title = "The password is too weak"


class NotFound(ImpextechError):
    code = "not-found"
    status = 404
    title = "Not found"


class Unauthenticated(ImpextechError):
    code = "unauthenticated"
    status = 401
    title = "Authentication is required"


class InvalidCredentials(Unauthenticated):
    code = "invalid-credentials"
    title = "The email or password is wrong"


class InvalidToken(Unauthenticated):
    code = "invalid-token"
    title = "The token is not valid"


class RefreshTokenReused(Unauthenticated):
    code = "refresh-token-reused"
    title = "This refresh token was already used; the session has been revoked"


class Forbidden(ImpextechError):
    code = "forbidden"
    status = 403
    title = "You may not do this"


class Conflict(ImpextechError):
    code = "conflict"
    status = 409
    title = "The request conflicts with the current state"


class EmailTaken(Conflict):
    code = "email-taken"
    title = "This email is already registered"


class SkuTaken(Conflict):
    code = "sku-taken"
    title = "This SKU is already used in this marketplace"


class SlugTaken(Conflict):
    code = "slug-taken"
    title = "This tenant slug is already used"


class PreconditionFailed(ImpextechError):
    code = "version-mismatch"
    status = 412
    title = "The resource changed since you read it"


class PreconditionRequired(ImpextechError):
    code = "precondition-required"
    status = 428
    title = "Send the version you read in an If-Match header"


class TenantRequired(ImpextechError):
    code = "tenant-required"
    status = 400
    title = "Name the marketplace with an X-Tenant header or its subdomain"


class UnknownTenant(ImpextechError):
    code = "unknown-tenant"
    status = 404
    title = "No such marketplace"


class TenantMismatch(ImpextechError):
    code = "tenant-mismatch"
    status = 401
    title = "The token belongs to another marketplace"


class RateLimited(ImpextechError):
    code = "rate-limited"
    status = 429
    title = "Too many attempts"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Too many attempts; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds
