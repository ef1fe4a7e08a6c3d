"""The base of the platform's error hierarchy and its generic categories.

Each context owns its own errors (``<context>/domain/errors.py`` or beside the rule that raises
them) and derives them from one of the categories below. A category says what kind of refusal
it is; the HTTP status of each category is decided in one table at the edge
(``impextech.kernel.web.STATUS_BY_CATEGORY``), never on the error classes themselves.
Every error carries a stable ``code`` (the problem ``type``) and a human ``title``.
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
    """Base of every error the platform raises on purpose (uncategorised: an internal error)."""

    code = "error"
    title = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


# -- the generic categories ----------------------------------------------------------------------


class BadRequest(ImpextechError):
    """The request cannot be read or is missing something outside its fields."""

    code = "bad-request"
    title = "Bad request"


class InvalidInput(ImpextechError):
    """Readable, but some fields break a rule; ``issues`` names each."""

    code = "validation-failed"
    title = "The request is not valid"

    def __init__(self, detail: str, issues: Sequence[FieldIssue] = ()) -> None:
        super().__init__(detail)
        self.issues = tuple(issues)


class Unauthenticated(ImpextechError):
    code = "unauthenticated"
    title = "Authentication is required"


class Forbidden(ImpextechError):
    code = "forbidden"
    title = "You may not do this"


class NotFound(ImpextechError):
    code = "not-found"
    title = "Not found"


class Conflict(ImpextechError):
    code = "conflict"
    title = "The request conflicts with the current state"


class PreconditionFailed(ImpextechError):
    code = "version-mismatch"
    title = "The resource changed since you read it"


class PreconditionRequired(ImpextechError):
    code = "precondition-required"
    title = "Send the version you read in an If-Match header"


class TooLarge(ImpextechError):
    code = "too-large"
    title = "The request is too large"


class UnsupportedMedia(ImpextechError):
    code = "unsupported-media-type"
    title = "The body's media type is not accepted here"


class RateLimited(ImpextechError):
    code = "rate-limited"
    title = "Too many attempts"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Too many attempts; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class UpstreamFailed(ImpextechError):
    """An outside service we called failed or refused."""

    code = "upstream-failed"
    title = "An outside service failed"


class Unavailable(ImpextechError):
    """Not now: a dependency is down or busy; the same request may work later."""

    code = "unavailable"
    title = "The service is unavailable"
