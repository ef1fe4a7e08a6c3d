"""Inspect a path: walk its input into items, scan them, return the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from impextech.vet.inputs import iter_input
from impextech.vet.items import Limits
from impextech.vet.model import Report
from impextech.vet.rules import RuleSet
from impextech.vet.scanner import scan_items


def scan_path(
    path: Path,
    limits: Limits | None = None,
    rules: RuleSet | None = None,
    on_file: Callable[[int], None] | None = None,
) -> Report:
    """Inspect PATH. Raises InputError when it cannot be read at all."""
    origins: list[str] = []
    return scan_items(
        iter_input(path, limits or Limits(), origins), str(path), rules, origins, on_file
    )
