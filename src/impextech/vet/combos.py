"""Fire `combo` rules: tags that other rules set, found together in one file or one origin."""

from __future__ import annotations

import bisect
from collections.abc import Collection

from impextech.vet.filecontext import AUTORUN, FileState, FindingSink, Hit
from impextech.vet.rules import Rule

# In a bundle (see the scanner) a combination counts only when its signals sit within
# PROXIMITY characters of each other, not anywhere in the file.
PROXIMITY = 2048


def fire_combinations(
    combos: Collection[Rule], states: Collection[FileState], sink: FindingSink
) -> None:
    """Report each combination whose tags one file, or one whole origin, carries."""
    file_combos = [r for r in combos if r.scope == "file"]
    repo_combos = [r for r in combos if r.scope == "repo"]
    for state in states:
        if len(state.tags) >= 2:
            _fire(file_combos, state, sink)
    if not repo_combos:
        return
    # Repository scope: the tags of every file of one origin (branch, stash, tree) together.
    by_origin: dict[str, dict[str, tuple[str, Hit]]] = {}
    for state in states:
        merged = by_origin.setdefault(state.origin, {})
        for tag, hit in state.tags.items():
            merged.setdefault(tag, (state.path, hit))
    for origin, merged in by_origin.items():
        tags = {t: h for t, (_, h) in merged.items()}
        for rule in repo_combos:
            used = _joined(rule, tags) if rule.join else _satisfied(rule, tags)
            if used is None:
                continue
            anchor_tag = next((t for t in reversed(used) if t != AUTORUN), used[0])
            path, hit = merged[anchor_tag]
            where = ", ".join(f"{merged[t][0]}:{merged[t][1].line}" for t in dict.fromkeys(used))
            sink.add(rule, path, hit.line, hit.evidence, origin, f"{rule.description} [{where}]")


def _joined(rule: Rule, tags: dict[str, Hit]) -> list[str] | None:
    """`all` holds prefixes ending in ':*'; they must share the same suffix."""
    first, *others = [t.removesuffix("*") for t in rule.all_tags]
    for tag in tags:
        if tag.startswith(first):
            suffix = tag[len(first) :]
            wanted = [o + suffix for o in others]
            if all(w in tags for w in wanted):
                return [tag, *wanted]
    return None


def _satisfied(rule: Rule, tags: dict[str, Hit]) -> list[str] | None:
    if not all(t in tags for t in rule.all_tags):
        return None
    present = [t for t in rule.any_tags if t in tags]
    if rule.any_tags and len(present) < rule.min_any:
        return None
    if any(t in tags for t in rule.none_tags):
        return None
    return [*rule.all_tags, *present]


def _near(state: FileState, rule: Rule) -> list[str] | None:
    """For a bundle: the combination's tags within PROXIMITY characters of each other."""
    tags = state.tags
    positional = [t for t in (*rule.all_tags, *rule.any_tags) if state.offsets.get(t)]
    if not positional:
        return _satisfied(rule, tags)
    anchor = positional[0]
    for at in state.offsets[anchor]:

        def close(tag: str, at: int = at) -> bool:
            where = state.offsets.get(tag)
            if tag not in tags:
                return False
            if not where:
                return True  # file-wide, such as ctx:autorun
            i = bisect.bisect_left(where := sorted(where), at - PROXIMITY)
            return i < len(where) and where[i] <= at + PROXIMITY

        if not all(close(t) for t in rule.all_tags):
            continue
        present = [t for t in rule.any_tags if close(t)]
        if rule.any_tags and len(present) < rule.min_any:
            continue
        if any(t in tags for t in rule.none_tags):
            return None
        return [*rule.all_tags, *present]
    return None


def _fire(combos: list[Rule], state: FileState, sink: FindingSink) -> None:
    tags, path, origin = state.tags, state.path, state.origin
    fired: list[tuple[Rule, list[str]]] = []
    for rule in combos:
        used = _near(state, rule) if state.bundle else _satisfied(rule, tags)
        if used is not None:
            fired.append((rule, used))
    if not fired:
        return
    top = max(r.severity for r, _ in fired)
    for rule, used in fired:
        if rule.severity < top:
            continue
        hit = _anchor(tags, used)
        signals = ", ".join(f"{t.split(':', 1)[-1]}@{tags[t].line}" for t in dict.fromkeys(used))
        sink.add(
            rule, path, hit.line, hit.evidence, origin, f"{rule.description} [signals: {signals}]"
        )


def _anchor(tags: dict[str, Hit], used: list[str]) -> Hit:
    # Point at the most telling line: prefer a signal that is not the autorun context.
    for t in reversed(used):
        if t != AUTORUN:
            return tags[t]
    return tags[used[0]]
