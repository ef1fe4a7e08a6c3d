"""Run one `pattern` rule over a file's text, looking only near the rule's literal needles."""

from __future__ import annotations

import re

from impextech.vet.filecontext import MAX_HITS_PER_RULE, MAX_OFFSETS, FileContext
from impextech.vet.model import Severity
from impextech.vet.rules import Rule

MAX_NEEDLE_HITS = 50_000
LONG_SPAN = 4096
SPAN_REACH = 1024


def _line_start(text: str, pos: int) -> int:
    """Start of the line holding pos, or SPAN_REACH before pos on a very long line."""
    lo = max(0, pos - LONG_SPAN)
    nl = text.rfind("\n", lo, pos)
    if nl >= 0:
        return nl + 1
    return 0 if lo == 0 else max(0, pos - SPAN_REACH)


def _line_end(text: str, pos: int) -> int:
    """End of the line holding pos (after its newline), or SPAN_REACH after pos."""
    hi = min(len(text), pos + LONG_SPAN)
    nl = text.find("\n", pos, hi)
    if nl >= 0:
        return nl + 1
    return len(text) if hi == len(text) else min(len(text), pos + SPAN_REACH)


def match_pattern(ctx: FileContext, rule: Rule) -> None:
    """Report the rule's first matches in the file and tag the file with every further one."""
    limit = max(rule.min_count, MAX_HITS_PER_RULE)
    if ctx.state.bundle and rule.severity is Severity.INFO:
        limit = max(limit, MAX_OFFSETS)
    matches: list[re.Match[str]] = []
    cache: dict[tuple[str, ...], list[tuple[int, int]]] = {}
    for n, pattern in enumerate(rule.patterns):
        own = rule.pattern_needles[n] if n < len(rule.pattern_needles) else ()
        key = own or rule.needles
        if key not in cache:
            cache[key] = _windows(ctx, rule, key)
        for start, end in cache[key]:
            for m in pattern.finditer(ctx.text, start, end):
                matches.append(m)
                if len(matches) >= limit:
                    break
            if len(matches) >= limit:
                break
        if len(matches) >= limit:
            break
    if len(matches) < rule.min_count:
        return
    ordered = sorted(matches, key=lambda m: m.start())
    for m in ordered[:MAX_HITS_PER_RULE]:
        ctx.report(rule, ctx.line_of(m.start()), ctx.evidence_at(m.start()), offset=m.start())
    for m in ordered[MAX_HITS_PER_RULE:]:
        for t in rule.tags:
            ctx.tag(t, 0, "", m.start())


def _windows(ctx: FileContext, rule: Rule, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    """Parts of the text worth matching: the lines around each needle, else everything.

    Running each pattern only near its literal needles keeps large bundles fast.
    """
    text, lower = ctx.text, ctx.lower
    whole = [(0, len(text))]
    if not needles or len(lower) != len(text):
        return whole
    spans: list[tuple[int, int]] = []
    for needle in needles:
        at = lower.find(needle)
        count = 0
        while at >= 0:
            count += 1
            if count > MAX_NEEDLE_HITS:
                return whole
            start = _line_start(text, at)
            for _ in range(rule.window):
                if start == 0:
                    break
                start = _line_start(text, start - 1)
            end = _line_end(text, at + len(needle))
            for _ in range(rule.window):
                if end >= len(text):
                    break
                end = _line_end(text, end)
            spans.append((start, end))
            at = lower.find(needle, end)
    if not spans:
        return []
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged
