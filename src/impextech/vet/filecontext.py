"""What a detector or pattern rule sees of one file, and how it reports back.

Detectors, pattern matching and combinations depend on this module; the scanner implements
`FindingSink` and hands each file's `FileContext` to the rules. Nothing here imports them.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from impextech.vet.items import SourceFile
from impextech.vet.rules import Rule

# Findings kept per rule and file, so that a pattern repeated a thousand times stays one
# readable entry; further hits still set the rule's tags.
MAX_HITS_PER_RULE = 3
# Positions kept per tag: enough for the proximity test in bundles, bounded in memory.
MAX_OFFSETS = 64
# Lines this long on average mean minified code, where line-based rules mislead.
MINIFIED_LINE = 300
EVIDENCE_WIDTH = 160
# The tag of a file that runs by itself (an install hook, a task, or what they load).
AUTORUN = "ctx:autorun"


@dataclass(frozen=True)
class Hit:
    line: int
    evidence: str


@dataclass
class FileState:
    path: str
    origin: str
    tags: dict[str, Hit] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    # Where each tag was seen (character offsets); a tag without offsets holds file-wide.
    offsets: dict[str, list[int]] = field(default_factory=dict)
    bundle: bool = False


class FindingSink(Protocol):
    """Where findings and references to other repository files go."""

    def add(
        self, rule: Rule, path: str, line: int, evidence: str, origin: str, message: str = ""
    ) -> None: ...

    def reference(self, origin: str, base: str, target: str, line: int, evidence: str) -> None: ...


class FileContext:
    """What a detector sees of one file, and how it reports back."""

    def __init__(self, sink: FindingSink, src: SourceFile, state: FileState, binary: bool) -> None:
        self.sink = sink
        self.src = src
        self.state = state
        self.path = src.path
        self.binary = binary
        self.text = "" if binary else src.data.decode("utf-8", "replace")
        self._lower: str | None = None
        self._newlines: list[int] | None = None

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def line_of(self, offset: int) -> int:
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1

    def evidence_at(self, offset: int, end: int | None = None) -> str:
        start = self.text.rfind("\n", 0, offset) + 1
        stop = self.text.find("\n", offset)
        stop = len(self.text) if stop < 0 else stop
        line = self.text[start:stop]
        if len(line) > EVIDENCE_WIDTH:
            col = offset - start
            lo = max(0, col - 40)
            line = ("…" if lo else "") + line[lo : lo + EVIDENCE_WIDTH] + "…"
        return line.strip()

    def tag(self, tag: str, line: int, evidence: str, offset: int = -1) -> None:
        self.state.tags.setdefault(tag, Hit(line, evidence))
        if offset >= 0:
            where = self.state.offsets.setdefault(tag, [])
            if len(where) < MAX_OFFSETS:
                where.append(offset)

    def report(
        self, rule: Rule, line: int, evidence: str, message: str = "", offset: int = -1
    ) -> None:
        for t in rule.tags:
            self.tag(t, line, evidence, offset)
        self.sink.add(rule, self.src.path, line, evidence, self.src.origin, message)

    @property
    def minified(self) -> bool:
        text = self.text
        if self.path.endswith((".min.js", ".min.mjs", ".min.cjs")):
            return True
        return len(text) > 10_000 and len(text) > MINIFIED_LINE * (text.count("\n") + 1)

    def reference(self, target: str, line: int, evidence: str, base: str | None = None) -> None:
        """Mark a repository file as run automatically (by an install hook, a task, ...).

        `base` is the folder the command runs in; by default this file's own folder.
        """
        folder = posixpath.dirname(self.path) if base is None else base
        self.sink.reference(self.src.origin, folder, target, line, evidence)


Detector = Callable[[FileContext, Rule], None]
