"""Password policy: long enough, not absurdly long, not common, not the user's own name."""

from __future__ import annotations

from importlib import resources

from impextech.kernel.domain.errors import FieldIssue, WeakPassword

MIN_LENGTH = 12
# argon2 work is bounded anyway; this bounds memory and refuses pasted novels.
MAX_LENGTH = 256


def _load_common() -> frozenset[str]:
    text = resources.files("impextech.identity.domain").joinpath("common_passwords.txt")
    return frozenset(
        line.strip().lower()
        for line in text.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


_COMMON = _load_common()


def _weak(message: str) -> WeakPassword:
    return WeakPassword(message, [FieldIssue(("body", "password"), message)])


def check_password(password: str, *, email: str = "", display_name: str = "") -> None:
    """Raise WeakPassword with a reason a person can act on."""
    if len(password) < MIN_LENGTH:
        raise _weak(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise _weak(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in _COMMON or lowered.rstrip("0123456789!.?") in _COMMON:
        raise _weak("this password is on the list of commonly used passwords")
    if len(set(password)) < 4:
        raise _weak("use more than three distinct characters")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        raise _weak("do not build the password from your email address")
    name = display_name.strip().lower()
    if len(name) >= 4 and name in lowered:
        raise _weak("do not build the password from your name")
