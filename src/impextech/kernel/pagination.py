"""Keyset pagination at the HTTP edge: a page's position in and out as a signed cursor.

Every list answers ``{"items": [...], "next_cursor": ...}``; the cursor is bound to the tenant
and to a "shape" naming the query (its sort, its filters that change the order), so it cannot
be replayed against another marketplace or another ordering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from fastapi import Response

from impextech.kernel.cursors import CursorCodec
from impextech.kernel.domain.errors import FieldIssue, InvalidInput
from impextech.kernel.web import json_response

P = TypeVar("P")

# A position is the last row's sort key and its id (the tie-breaker).
KeyPosition = tuple[object, UUID]
TimePosition = tuple[datetime, UUID]


def position_to_json(position: KeyPosition) -> list[object]:
    key, row_id = position
    return [key.isoformat() if isinstance(key, datetime) else key, str(row_id)]


def time_position_from_json(raw: list[object]) -> TimePosition:
    """Inverse of ``position_to_json`` for a timestamp key; ValueError if it is not one."""
    key, row_id = _pair(raw)
    if not isinstance(key, str):
        raise ValueError("the key is not a timestamp")
    return datetime.fromisoformat(key), UUID(str(row_id))


def _pair(raw: list[object]) -> tuple[object, object]:
    if len(raw) != 2:
        raise ValueError("a position is a key and an id")
    return raw[0], raw[1]


def key_position_from_json(raw: list[object], key_type: type) -> KeyPosition:
    """Inverse of ``position_to_json`` for a key of ``key_type``; ValueError on anything else."""
    if key_type is datetime:
        return time_position_from_json(raw)
    key, row_id = _pair(raw)
    if type(key) is not key_type:
        raise ValueError(f"the key is not a {key_type.__name__}")
    return key, UUID(str(row_id))


def after_cursor(
    cursors: CursorCodec,
    cursor: str | None,
    tenant_id: UUID | None,
    shape: str,
    parse: Callable[[list[object]], P],
) -> P | None:
    """The position a ``next_cursor`` stands for (None for the first page); 422 if it was not
    minted for this tenant and query, or does not parse as ``parse`` expects."""
    if cursor is None:
        return None
    raw = cursors.decode(cursor, tenant_id, shape)
    try:
        return parse(raw)
    except (ValueError, TypeError):
        raise InvalidInput(
            "the cursor is not valid here", [FieldIssue(("query", "cursor"), "invalid")]
        ) from None


def page_response(
    cursors: CursorCodec,
    tenant_id: UUID | None,
    shape: str,
    items: Sequence[object],
    next_position: P | None,
    dump: Callable[[P], list[object]],
) -> Response:
    """One page as JSON: its items and the cursor of the next page (null on the last)."""
    next_cursor = None
    if next_position is not None:
        next_cursor = cursors.encode(tenant_id, shape, dump(next_position))
    return json_response({"items": items, "next_cursor": next_cursor})
