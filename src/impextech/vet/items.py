"""What input walking hands to the scanner: files, limit breaches, the limits that bound them.

Walking (sources, gitsource, inputs) produces these and scanning (scanner and the modules it
drives) consumes them; neither side imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass


class InputError(Exception):
    """The input cannot be read at all (missing, unreadable, corrupt archive)."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what is read. Defaults suit a source repository, not a disk image."""

    max_files: int = 200_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: int = 200
    ratio_floor_bytes: int = 16 * 1024**2
    scan_bytes: int = 4 * 1024**2


@dataclass(frozen=True)
class SourceFile:
    path: str
    data: bytes
    size: int
    origin: str = ""

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size


@dataclass(frozen=True)
class LimitBreach:
    """An input-level problem: kind is a rule name from the `input` rule set."""

    kind: str
    path: str
    detail: str
    origin: str = ""


Item = SourceFile | LimitBreach
