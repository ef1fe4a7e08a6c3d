"""Load vet's rules from the TOML files in `impextech/vet/rules/`.

Each rule has an id, a name, a severity, a one-line description and a positive and a negative
example. Four kinds exist:

* `pattern`: regular expressions over a text file (optionally restricted to some paths);
* `combo`: fires when a file carries a combination of tags set by other rules;
* `builtin`: a structural detector written in Python (`detectors.py`), parameterised here;
* `input`: a problem with the input itself (archive limits, links leaving the root).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from impextech.vet.model import Severity

KINDS = frozenset({"pattern", "combo", "builtin", "input"})

DOC_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".adoc", ".html", ".htm", ".map", ".svg")


class RuleError(ValueError):
    """A rule file is malformed; the message names the file and the rule."""


@dataclass(frozen=True)
class Example:
    files: dict[str, bytes]
    archive: str = ""
    symlinks: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    corrupt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    description: str
    kind: str
    positive: Example
    negative: Example
    patterns: tuple[re.Pattern[str], ...] = ()
    # Per pattern, its own literal needles (empty: the rule's needles).
    pattern_needles: tuple[tuple[str, ...], ...] = ()
    needles: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    include_docs: bool = False
    tags: tuple[str, ...] = ()
    min_count: int = 1
    window: int = 0
    non_ascii: bool = False
    skip_minified: bool = False
    all_tags: tuple[str, ...] = ()
    any_tags: tuple[str, ...] = ()
    min_any: int = 1
    none_tags: tuple[str, ...] = ()
    scope: str = "file"
    join: bool = False
    detector: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    path_re: re.Pattern[str] | None = None
    exclude_re: re.Pattern[str] | None = None

    def applies_to(self, path: str) -> bool:
        lower = "/" + path.lower()
        return self.applies_to_lower(lower, lower.endswith(DOC_SUFFIXES))

    def applies_to_lower(self, lower: str, is_doc: bool) -> bool:
        """`lower` is "/" + the lower-cased path; is_doc says it ends like documentation."""
        if self.path_re is not None and self.path_re.match(lower) is None:
            return False
        if self.exclude_re is not None and self.exclude_re.match(lower) is not None:
            return False
        return self.include_docs or self.path_re is not None or not is_doc


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def by_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)

    def get(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def input_rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.kind == "input" and r.name == name:
                return r
        raise KeyError(name)


def _example(raw: Any, where: str) -> Example:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: example must be a table")
    files: dict[str, bytes] = {}
    if "path" in raw:
        if "content_hex" in raw:
            files[str(raw["path"])] = bytes.fromhex(str(raw["content_hex"]))
        else:
            files[str(raw["path"])] = str(raw.get("content", "")).encode()
    for p, c in dict(raw.get("files", {})).items():
        files[str(p)] = str(c).encode()
    for p, c in dict(raw.get("hex_files", {})).items():
        files[str(p)] = bytes.fromhex(str(c))
    for p, spec in dict(raw.get("repeat", {})).items():
        unit, times = spec
        files[str(p)] = str(unit).encode() * int(times)
    symlinks = {str(k): str(v) for k, v in dict(raw.get("symlinks", {})).items()}
    devices = tuple(str(d) for d in raw.get("devices", []))
    if not files and not symlinks and not devices and not raw.get("archive"):
        raise RuleError(f"{where}: example has no files")
    return Example(
        files=files,
        archive=str(raw.get("archive", "")),
        symlinks=symlinks,
        devices=devices,
        limits={str(k): int(v) for k, v in dict(raw.get("limits", {})).items()},
        corrupt=tuple(str(c) for c in raw.get("corrupt", [])),
    )


def _strs(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in value)


def _globs(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


def parse_rule(raw: dict[str, Any], source: str) -> Rule:
    rid = str(raw.get("id", "?"))
    where = f"{source}: rule {rid}"
    for key in ("id", "name", "severity", "description", "kind", "positive", "negative"):
        if key not in raw:
            raise RuleError(f"{where}: missing {key!r}")
    kind = str(raw["kind"])
    if kind not in KINDS:
        raise RuleError(f"{where}: unknown kind {kind!r}")
    try:
        severity = Severity.parse(str(raw["severity"]))
    except ValueError as exc:
        raise RuleError(f"{where}: {exc}") from None
    flags = re.MULTILINE | (re.IGNORECASE if raw.get("ignore_case") else 0)
    try:
        raw_patterns = raw.get("patterns", [])
        if isinstance(raw_patterns, str):
            raw_patterns = [raw_patterns]
        sources = [str(p["re"]) if isinstance(p, dict) else str(p) for p in raw_patterns]
        pattern_needles = tuple(
            tuple(str(n).lower() for n in p.get("needles", [])) if isinstance(p, dict) else ()
            for p in raw_patterns
        )
        patterns = tuple(re.compile(p, flags) for p in sources)
    except re.error as exc:
        raise RuleError(f"{where}: bad pattern: {exc}") from None
    if kind == "pattern" and not patterns:
        raise RuleError(f"{where}: a pattern rule needs patterns")
    if kind == "combo" and not (raw.get("all") or raw.get("any")):
        raise RuleError(f"{where}: a combo rule needs 'all' or 'any'")
    if str(raw.get("scope", "file")) not in ("file", "repo"):
        raise RuleError(f"{where}: scope must be 'file' or 'repo'")
    if kind == "builtin" and not raw.get("detector"):
        raise RuleError(f"{where}: a builtin rule needs a detector")
    paths = tuple(p.lower() for p in _strs(raw, "paths"))
    exclude_paths = tuple(p.lower() for p in _strs(raw, "exclude_paths"))
    return Rule(
        id=rid,
        name=str(raw["name"]),
        severity=severity,
        description=str(raw["description"]),
        kind=kind,
        positive=_example(raw["positive"], f"{where} positive"),
        negative=_example(raw["negative"], f"{where} negative"),
        patterns=patterns,
        pattern_needles=pattern_needles,
        needles=tuple(n.lower() for n in _strs(raw, "needles")),
        paths=paths,
        exclude_paths=exclude_paths,
        path_re=_globs(paths),
        exclude_re=_globs(exclude_paths),
        include_docs=bool(raw.get("include_docs", False)),
        tags=_strs(raw, "tags"),
        min_count=int(raw.get("min_count", 1)),
        window=int(raw.get("window", 0)),
        non_ascii=bool(raw.get("non_ascii", False)),
        skip_minified=bool(raw.get("skip_minified", False)),
        all_tags=_strs(raw, "all"),
        any_tags=_strs(raw, "any"),
        min_any=int(raw.get("min_any", 1)),
        none_tags=_strs(raw, "none"),
        scope=str(raw.get("scope", "file")),
        join=bool(raw.get("join", False)),
        detector=str(raw.get("detector", "")),
        params=dict(raw.get("params", {})),
    )


def parse_ruleset(texts: dict[str, str]) -> RuleSet:
    rules: list[Rule] = []
    seen: set[str] = set()
    for source in sorted(texts):
        try:
            doc = tomllib.loads(texts[source])
        except tomllib.TOMLDecodeError as exc:
            raise RuleError(f"{source}: {exc}") from None
        for raw in doc.get("rule", []):
            rule = parse_rule(raw, source)
            if rule.id in seen:
                raise RuleError(f"{source}: duplicate rule id {rule.id}")
            seen.add(rule.id)
            rules.append(rule)
    return RuleSet(tuple(rules))


@cache
def default_ruleset() -> RuleSet:
    folder = resources.files("impextech.vet").joinpath("rules")
    texts = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }
    return parse_ruleset(texts)
