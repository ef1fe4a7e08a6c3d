"""The scan: run every rule over every file, join signals into combinations, score the input."""

from __future__ import annotations

import bisect
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from impextech.vet.gitsource import blob_id, is_git_dir, iter_git
from impextech.vet.model import Finding, Report, Severity
from impextech.vet.rules import DOC_SUFFIXES, Rule, RuleSet, default_ruleset
from impextech.vet.sources import (
    InputError,
    Item,
    LimitBreach,
    Limits,
    SourceFile,
    archive_kind,
    iter_directory,
    iter_tar,
    iter_zip,
)

MAX_HITS_PER_RULE = 3
MAX_NEEDLE_HITS = 50_000
LONG_SPAN = 4096
SPAN_REACH = 1024
# A file this large, or this minified, is a bundle of many modules: a combination counts only
# when its signals sit within PROXIMITY characters of each other, not anywhere in the file.
BUNDLE_BYTES = 256 * 1024
MINIFIED_LINE = 300
PROXIMITY = 2048
MAX_OFFSETS = 64
EVIDENCE_WIDTH = 160
AUTORUN = "ctx:autorun"

CODE_SUFFIXES = (
    ".js", ".cjs", ".mjs", ".jsx", ".ts", ".cts", ".mts", ".tsx", ".py", ".pyw", ".sh",
    ".bash", ".zsh", ".ps1", ".bat", ".cmd", ".vbs", ".rb", ".php", ".pl", ".lua", ".coffee",
)  # fmt: skip

_RELATIVE_PATH = re.compile(r"""['"](\.{1,2}/[^'"\n]{1,200})['"]""")
_IMPORT_BEFORE = re.compile(r"(?:require\s*\(\s*|import\s*\(\s*|\bfrom\s+|\bimport\s+)$")


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


def local_imports(text: str) -> list[str]:
    """Relative modules a JavaScript or TypeScript file requires or imports."""
    found: list[str] = []
    for m in _RELATIVE_PATH.finditer(text):
        if _IMPORT_BEFORE.search(text, max(0, m.start() - 16), m.start()):
            found.append(m.group(1))
            if len(found) >= 200:
                break
    return found


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


class FileContext:
    """What a detector sees of one file, and how it reports back."""

    def __init__(self, scan: Scan, src: SourceFile, state: FileState, binary: bool) -> None:
        self.scan = scan
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
        self.scan.add(rule, self.src.path, line, evidence, self.src.origin, message)

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
        self.scan.reference(self.src.origin, folder, target, line, evidence)


Detector = Callable[[FileContext, Rule], None]


class Scan:
    def __init__(self, rules: RuleSet, detectors: dict[str, Detector]) -> None:
        self.rules = rules
        self.detectors = detectors
        self.patterns = rules.by_kind("pattern")
        self.builtins = rules.by_kind("builtin")
        self.combos = rules.by_kind("combo")
        self.findings: list[Finding] = []
        self.signals: list[Finding] = []
        self.states: dict[tuple[str, str], FileState] = {}
        self.refs: list[tuple[str, str, Hit]] = []
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
        sink = self.signals if rule.severity is Severity.INFO else self.findings
        sink.append(
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
            self._match(ctx, rule)
        if item.path.lower().endswith(CODE_SUFFIXES) and (
            "require" in ctx.text or "import" in ctx.text
        ):
            state.imports = local_imports(ctx.text)

    def _match(self, ctx: FileContext, rule: Rule) -> None:
        limit = max(rule.min_count, MAX_HITS_PER_RULE)
        if ctx.state.bundle and rule.severity is Severity.INFO:
            limit = max(limit, MAX_OFFSETS)
        matches: list[re.Match[str]] = []
        cache: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for n, pattern in enumerate(rule.patterns):
            own = rule.pattern_needles[n] if n < len(rule.pattern_needles) else ()
            key = own or rule.needles
            if key not in cache:
                cache[key] = self._windows(ctx, rule, key)
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

    @staticmethod
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

    def _resolve(self, origin: str, path: str) -> FileState | None:
        for cand in (path, *(path + s for s in (".js", ".cjs", ".mjs", ".ts", "/index.js"))):
            state = self.states.get((origin, cand))
            if state is not None:
                return state
        return None

    def _propagate_autorun(self) -> None:
        queue: list[tuple[str, str, Hit, int]] = [(o, p, h, 0) for o, p, h in self.refs]
        while queue:
            origin, path, hit, depth = queue.pop()
            state = self._resolve(origin, path)
            if state is None or AUTORUN in state.tags:
                continue
            state.tags[AUTORUN] = hit
            if depth < 3:
                base = posixpath.dirname(state.path)
                for imp in state.imports:
                    target = posixpath.normpath(posixpath.join(base, imp))
                    queue.append((origin, target, hit, depth + 1))

    def _combine(self) -> None:
        file_combos = [r for r in self.combos if r.scope == "file"]
        repo_combos = [r for r in self.combos if r.scope == "repo"]
        for state in self.states.values():
            if len(state.tags) >= 2:
                self._fire(file_combos, state)
        if not repo_combos:
            return
        # Repository scope: the tags of every file of one origin (branch, stash, tree) together.
        by_origin: dict[str, dict[str, tuple[str, Hit]]] = {}
        for state in self.states.values():
            merged = by_origin.setdefault(state.origin, {})
            for tag, hit in state.tags.items():
                merged.setdefault(tag, (state.path, hit))
        for origin, merged in by_origin.items():
            tags = {t: h for t, (_, h) in merged.items()}
            for rule in repo_combos:
                used = self._joined(rule, tags) if rule.join else self._satisfied(rule, tags)
                if used is None:
                    continue
                anchor_tag = next((t for t in reversed(used) if t != AUTORUN), used[0])
                path, hit = merged[anchor_tag]
                where = ", ".join(
                    f"{merged[t][0]}:{merged[t][1].line}" for t in dict.fromkeys(used)
                )
                self.add(
                    rule, path, hit.line, hit.evidence, origin, f"{rule.description} [{where}]"
                )

    @staticmethod
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

    @staticmethod
    def _satisfied(rule: Rule, tags: dict[str, Hit]) -> list[str] | None:
        if not all(t in tags for t in rule.all_tags):
            return None
        present = [t for t in rule.any_tags if t in tags]
        if rule.any_tags and len(present) < rule.min_any:
            return None
        if any(t in tags for t in rule.none_tags):
            return None
        return [*rule.all_tags, *present]

    @staticmethod
    def _near(state: FileState, rule: Rule) -> list[str] | None:
        """For a bundle: the combination's tags within PROXIMITY characters of each other."""
        tags = state.tags
        positional = [t for t in (*rule.all_tags, *rule.any_tags) if state.offsets.get(t)]
        if not positional:
            return Scan._satisfied(rule, tags)
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

    def _fire(self, combos: list[Rule], state: FileState) -> None:
        tags, path, origin = state.tags, state.path, state.origin
        fired: list[tuple[Rule, list[str]]] = []
        for rule in combos:
            used = self._near(state, rule) if state.bundle else self._satisfied(rule, tags)
            if used is not None:
                fired.append((rule, used))
        if not fired:
            return
        top = max(r.severity for r, _ in fired)
        for rule, used in fired:
            if rule.severity < top:
                continue
            hit = self._anchor(tags, used)
            signals = ", ".join(
                f"{t.split(':', 1)[-1]}@{tags[t].line}" for t in dict.fromkeys(used)
            )
            self.add(
                rule,
                path,
                hit.line,
                hit.evidence,
                origin,
                f"{rule.description} [signals: {signals}]",
            )

    @staticmethod
    def _anchor(tags: dict[str, Hit], used: list[str]) -> Hit:
        # Point at the most telling line: prefer a signal that is not the autorun context.
        for t in reversed(used):
            if t != AUTORUN:
                return tags[t]
        return tags[used[0]]

    def finish(self, target: str, origins: list[str]) -> Report:
        self._propagate_autorun()
        self._combine()
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


def _git_extras(git_dir: Path, limits: Limits) -> Iterator[Item]:
    """The repository's own config and enabled hooks: files git itself would act on."""
    config = git_dir / "config"
    if config.is_file() and not config.is_symlink():
        data = config.read_bytes()[: limits.scan_bytes]
        yield SourceFile(".git/config", data, len(data))
    hooks = git_dir / "hooks"
    if hooks.is_dir() and not hooks.is_symlink():
        for item in iter_directory(hooks, limits):
            if isinstance(item, SourceFile) and not item.path.endswith(".sample"):
                yield SourceFile(".git/hooks/" + item.path, item.data, item.size)


def iter_input(path: Path, limits: Limits, origins: list[str]) -> Iterator[Item]:
    """Everything vet will inspect for PATH, in a stable order."""
    if not path.exists() and not path.is_symlink():
        raise InputError(f"no such file or directory: {path}")
    if path.is_dir():
        if is_git_dir(path):
            origins.append("git (bare)")
            yield from _git_extras(path, limits)
            yield from iter_git(path, limits)
            return
        origins.append("working tree")
        seen: set[bytes] = set()
        for item in iter_directory(path, limits):
            if isinstance(item, SourceFile) and not item.truncated:
                seen.add(blob_id(item.data))
            yield item
        dotgit = path / ".git"
        if dotgit.is_dir() and not dotgit.is_symlink():
            origins.append("git history")
            yield from _git_extras(dotgit, limits)
            yield from iter_git(path, limits, seen)
        return
    kind = archive_kind(path)
    if not path.is_file():
        raise InputError(f"not a regular file or directory: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"permission denied: {path}")
    if kind == "zip":
        origins.append("zip archive")
        yield from iter_zip(path, limits)
    elif kind == "tar":
        origins.append("tar archive")
        yield from iter_tar(path, limits)
    else:
        origins.append("single file")
        try:
            data = path.read_bytes()[: limits.scan_bytes]
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        yield SourceFile(path.name, data, path.stat().st_size)


def scan_items(
    items: Iterable[Item],
    target: str = "<memory>",
    rules: RuleSet | None = None,
    origins: list[str] | None = None,
    on_file: Callable[[int], None] | None = None,
) -> Report:
    from impextech.vet.detectors import DETECTORS

    scan = Scan(rules or default_ruleset(), DETECTORS)
    for item in items:
        scan.feed(item)
        if on_file is not None:
            on_file(item.size if isinstance(item, SourceFile) else 0)
    return scan.finish(target, origins or [])


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
