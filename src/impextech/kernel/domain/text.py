"""Text the platform accepts from people: no control characters, no display tricks, NFC.

The one place these rules live: the HTTP edge's ``SingleLine``/``MultiLine`` types and the CSV
importer both call them, so a name refused by the API is refused in a file too.
"""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls, DEL, lone surrogates, and the Unicode "noncharacters"; PostgreSQL cannot
# store NUL at all, and the rest only ever arrive by accident or by attack. The ranges are
# regular-expression text that Python and JSON Schema (ECMA-262) read alike, so the HTTP edge
# publishes these very rules in its OpenAPI document.
SINGLE_LINE_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff"
MULTI_LINE_FORBIDDEN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
# Bidirectional overrides let a name display as something it is not.
BIDI_CONTROLS = r"\u202a-\u202e\u2066-\u2069"
# A lone surrogate is no character at all (I-JSON forbids it): kept apart because many
# validators' regular expressions cannot even name one.
_SURROGATES = r"\ud800-\udfff"
_FORBIDDEN_SINGLE_LINE = re.compile(f"[{SINGLE_LINE_FORBIDDEN}{_SURROGATES}]")
_FORBIDDEN_MULTI_LINE = re.compile(f"[{MULTI_LINE_FORBIDDEN}{_SURROGATES}]")
_BIDI_CONTROLS = re.compile(f"[{BIDI_CONTROLS}]")


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
