"""Password policy: long enough, not absurdly long, not common, not the user's own name.

"Common" means on a list of passwords seen in real breaches: the 30,000 most frequent ones that
zxcvbn ships (MIT licence, built from leaked password dumps), plus our own list of usual
suffixed forms. Both are package data read once, on first use, so importing the rule does no I/O
and the check itself is one lookup in a frozenset.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Container
from importlib import resources
from pathlib import Path

from impextech.identity.domain.errors import WeakPassword
from impextech.kernel.domain.errors import FieldIssue

MIN_LENGTH = 12
# argon2 work is bounded anyway; this bounds memory and refuses pasted novels.
MAX_LENGTH = 256


def _own_list() -> set[str]:
    text = resources.files("impextech.identity.domain").joinpath("common_passwords.txt")
    return {
        line.strip().lower()
        for line in text.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }


def _breach_list() -> set[str]:
    """zxcvbn's password frequency list, read from its data file.

    Importing zxcvbn itself would build every matcher it has (about 15 MiB) just to reach one
    list, so the file is parsed as a literal instead: the list is the ``"passwords"`` entry of
    the ``FREQUENCY_LISTS`` dict, a comma-separated string split at import.
    """
    spec = importlib.util.find_spec("zxcvbn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the zxcvbn package (the breached-password list) is not installed")
    source = Path(next(iter(spec.submodule_search_locations)), "frequency_lists.py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "passwords":
                joined = _joined_literal(value)
                return {word.lower() for word in joined.split(",") if word}
    raise RuntimeError("zxcvbn's frequency lists no longer hold a 'passwords' entry")


def _joined_literal(node: ast.expr) -> str:
    # '"a,b,c".split(",")' in the current release; a plain string literal would do as well.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise RuntimeError("zxcvbn's 'passwords' list is not in a form this reader knows")


@functools.cache
def known_passwords() -> frozenset[str]:
    """Every password on the lists, lower-cased; loaded once per process."""
    return frozenset(_own_list() | _breach_list())


class _KnownPasswords:
    """The lists as a container that loads itself on the first lookup."""

    def __contains__(self, candidate: object) -> bool:
        return candidate in known_passwords()


KNOWN_PASSWORDS: Container[str] = _KnownPasswords()


def _weak(message: str) -> WeakPassword:
    return WeakPassword(message, [FieldIssue(("body", "password"), message)])


def check_password(
    password: str,
    *,
    email: str = "",
    display_name: str = "",
    common: Container[str] = KNOWN_PASSWORDS,
) -> None:
    """Raise WeakPassword with a reason a person can act on."""
    if len(password) < MIN_LENGTH:
        raise _weak(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise _weak(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in common or lowered.rstrip("0123456789!.?") in common:
        raise _weak("this password is on the list of commonly used passwords")
    if len(set(password)) < 4:
        raise _weak("use more than three distinct characters")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        raise _weak("do not build the password from your email address")
    name = display_name.strip().lower()
    if len(name) >= 4 and name in lowered:
        raise _weak("do not build the password from your name")
