"""The identity context's errors, each in one of the kernel's categories."""

from __future__ import annotations

from impextech.kernel.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)


class WeakPassword(InvalidInput):
    code = "weak-password"
    title = "The password is too weak"


class InvalidCredentials(Unauthenticated):
    code = "invalid-credentials"
    title = "The email or password is wrong"


class InvalidToken(Unauthenticated):
    code = "invalid-token"
    title = "The token is not valid"


class RefreshTokenReused(Unauthenticated):
    code = "refresh-token-reused"
    title = "This refresh token was already used; the session has been revoked"


class EmailTaken(Conflict):
    code = "email-taken"
    title = "This email is already registered"


class SlugTaken(Conflict):
    code = "slug-taken"
    title = "This tenant slug is already used"


class UnknownTenant(NotFound):
    code = "unknown-tenant"
    title = "No such marketplace"


class UserNotFound(NotFound):
    code = "user-not-found"
    title = "No such user"


class LastActiveAdmin(Conflict):
    code = "last-active-admin"
    title = "A marketplace must keep at least one active admin"


class AdminRoleLost(Forbidden):
    """The caller was an admin when the request was authenticated, but no longer is."""

    code = "admin-role-lost"
    title = "You are no longer an active admin of this marketplace"


class PasswordChangedMeanwhile(Conflict):
    code = "password-changed-meanwhile"
    title = "The password was changed by another request; sign in again"


class InvalidResetToken(BadRequest):
    code = "invalid-reset-token"
    title = "This password reset link is unknown, already used or expired"
