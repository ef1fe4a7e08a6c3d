"""Text the platform accepts from people: no control characters, no display tricks, NFC.

The one place these rules live: the HTTP edge's ``SingleLine``/``MultiLine`` types and the CSV
importer both call them, so a name refused by the API is refused in a file too.
"""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls, DEL, lone surrogates, and the Unicode "noncharacters"; PostgreSQL cannot
# store NUL at all, and the rest only ever arrive by accident or by attack.
_FORBIDDEN_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_FORBIDDEN_MULTI_LINE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]"
)
# Bidirectional overrides let a name display as something it is not.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def _clean(value: str, pattern: re.Pattern[str]) -> str:
    if pattern.search(value) or _BIDI_CONTROLS.search(value):
        raise ValueError("contains control, surrogate or bidirectional-override characters")
    return unicodedata.normalize("NFC", value)


def single_line(value: str) -> str:
    """A name-like value, stripped and NFC-normalised; ValueError if unsafe or blank."""
    value = _clean(value, _FORBIDDEN_SINGLE_LINE).strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def multi_line(value: str) -> str:
    """A description-like value (newlines, tabs allowed), NFC-normalised; ValueError if unsafe."""
    return _clean(value, _FORBIDDEN_MULTI_LINE)
