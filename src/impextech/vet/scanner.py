"""The scan: run every rule over every item, join signals into combinations, build the report."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable

from impextech.vet.autorun import Reference, file_imports, propagate_autorun
from impextech.vet.combos import fire_combinations
from impextech.vet.detectors import DETECTORS
from impextech.vet.filecontext import MAX_HITS_PER_RULE, Detector, FileContext, FileState, Hit
from impextech.vet.items import Item, LimitBreach, SourceFile
from impextech.vet.model import Finding, Report, Severity
from impextech.vet.patterns import match_pattern
from impextech.vet.rules import DOC_SUFFIXES, Rule, RuleSet, default_ruleset

# A file this large, or minified, is a bundle of many modules: its combinations must sit close
# together (see combos.PROXIMITY) and its signals keep more positions.
BUNDLE_BYTES = 256 * 1024


class Scan:
    """One inspection: fed item by item, then finished into a Report."""

    def __init__(self, rules: RuleSet, detectors: dict[str, Detector]) -> None:
        self.rules = rules
        self.detectors = detectors
        self.patterns = rules.by_kind("pattern")
        self.builtins = rules.by_kind("builtin")
        self.combos = rules.by_kind("combo")
        self.findings: list[Finding] = []
        self.signals: list[Finding] = []
        self.states: dict[tuple[str, str], FileState] = {}
        self.refs: list[Reference] = []
        self.files = 0
        self.bytes = 0
        self._hits: dict[tuple[str, str, str], int] = {}

    def add(
        self, rule: Rule, path: str, line: int, evidence: str, origin: str, message: str = ""
    ) -> None:
        key = (rule.id, origin, path)
        n = self._hits.get(key, 0)
        self._hits[key] = n + 1
        if n >= MAX_HITS_PER_RULE:
            return
        kept = self.signals if rule.severity is Severity.INFO else self.findings
        kept.append(
            Finding(
                rule_id=rule.id,
                rule_name=rule.name,
                severity=rule.severity,
                message=message or rule.description,
                path=path,
                line=line,
                evidence=evidence,
                origin=origin,
            )
        )

    def reference(self, origin: str, base: str, target: str, line: int, evidence: str) -> None:
        norm = posixpath.normpath(posixpath.join(base, target))
        if norm.startswith("../") or norm == "..":
            return
        self.refs.append((origin, norm, Hit(line, evidence)))

    def feed(self, item: Item) -> None:
        if isinstance(item, LimitBreach):
            try:
                rule = self.rules.input_rule(item.kind)
            except KeyError:
                rule = self.rules.input_rule("unreadable-entry")
            self.add(rule, item.path or ".", 0, item.detail, item.origin)
            return
        self.files += 1
        self.bytes += item.size
        state = FileState(item.path, item.origin)
        self.states[(item.origin, item.path)] = state
        binary = b"\0" in item.data[:8192]
        ctx = FileContext(self, item, state, binary)
        lpath = "/" + item.path.lower()
        is_doc = lpath.endswith(DOC_SUFFIXES)
        for rule in self.builtins:
            if rule.applies_to_lower(lpath, is_doc) or (rule.params.get("binary") and binary):
                self.detectors[rule.detector](ctx, rule)
        if binary:
            return
        lower = ctx.lower
        ascii_only = ctx.text.isascii()
        minified = ctx.minified
        state.bundle = minified or len(ctx.text) > BUNDLE_BYTES
        present: dict[str, bool] = {}
        for rule in self.patterns:
            if not rule.applies_to_lower(lpath, is_doc):
                continue
            if rule.non_ascii and ascii_only:
                continue
            if rule.skip_minified and minified:
                continue
            if rule.needles:
                for n in rule.needles:
                    hit = present.get(n)
                    if hit is None:
                        hit = present[n] = n in lower
                    if hit:
                        break
                else:
                    continue
            match_pattern(ctx, rule)
        state.imports = file_imports(item.path, ctx.text)

    def finish(self, target: str, origins: list[str]) -> Report:
        propagate_autorun(self.states, self.refs)
        fire_combinations(self.combos, self.states.values(), self)
        order = sorted(
            self.findings, key=lambda f: (-f.severity, f.origin, f.path, f.line, f.rule_id)
        )
        return Report(
            target=target,
            findings=order,
            files_scanned=self.files,
            bytes_scanned=self.bytes,
            origins=origins,
            signals=self.signals,
        )


def scan_items(
    items: Iterable[Item],
    target: str = "<memory>",
    rules: RuleSet | None = None,
    origins: list[str] | None = None,
    on_file: Callable[[int], None] | None = None,
) -> Report:
    scan = Scan(rules or default_ruleset(), DETECTORS)
    for item in items:
        scan.feed(item)
        if on_file is not None:
            on_file(item.size if isinstance(item, SourceFile) else 0)
    return scan.finish(target, origins or [])
