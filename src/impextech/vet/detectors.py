"""Structural detectors that a regular expression cannot express well.

Each is named by a `builtin` rule in the TOML rule files, which carries its id, severity,
examples and parameters; the function only decides where that rule fires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import posixpath
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from impextech.vet.filecontext import AUTORUN, Detector, FileContext
from impextech.vet.rules import Rule

LIFECYCLE = (
    "preinstall", "install", "postinstall", "preprepare", "prepare", "postprepare",
    "prepublish", "prepack", "postpack", "dependencies",
)  # fmt: skip

DEP_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")

# Interpreters whose first non-option argument is a file from the repository that then runs,
# whatever its extension (campaigns run JavaScript saved as a .woff2 font).
_RUNNER = re.compile(
    r"""(?:^|[\s;&|(])(?:node|nodejs|sh|bash|zsh|python3?|py|deno\s+run|bun|tsx|ts-node|"""
    r"""pwsh|powershell(?:\.exe)?(?:\s+-file)?|source|\.)\s+"""
    r"""(?:-{1,2}[\w-]+(?:[= ](?!-)\S+)?\s+)*["']?"""
    r"""([\w@.-]*[./][\w@./-]*\w)""",
    re.IGNORECASE,
)
_DIRECT = re.compile(r"""(?:^|[\s;&|(])(\.{1,2}/[\w@./-]+)""")

# What makes a lifecycle command dangerous on its own.
_DANGEROUS_CMD = re.compile(
    r"\b(?:curl|wget|iwr|invoke-webrequest|invoke-expression|iex|certutil|bitsadmin)\b"
    r"|\bbase64\s+(?:-d|--decode)\b|\beval\b|\bnew\s+Function\b|\batob\b|\bexec\s*\("
    r"|Buffer\.from|fromCharCode|child_process|\bsubprocess\b|\bos\.system\b"
    r"""|require\s*\(\s*['"](?:node:)?(?:https?|net|dgram)['"]|\burllib\b|\bfetch\s*\("""
    r"|powershell[^\n]*\s-(?:e|enc|encodedcommand)\s|https?://|\|\s*(?:ba|z)?sh\b",
    re.IGNORECASE,
)
# Local modules required by inline code (`node -e "require('./postinstall')"`).
_INLINE_REQUIRE = re.compile(r"""require\s*\(\s*\\?['"](\.{1,2}/[^'"\\]+)\\?['"]\s*\)""")

# Public registry hosts, by SHA-256 of the host name (house rule: no file names their hosts).
_REGISTRY_HOSTS = frozenset(
    {
        "0dc11026ac75c015aaa1deafff4a7a54ef6d0cf6b3c7f9b1d2c8f3502929aa9e",
        "70bb4000cd2fab03af01fed086c6bf3c2c970f8b8b8001c311028ec3b80e775a",
    }
)


def command_refs(command: str) -> list[str]:
    """Repository files that a shell command line would run."""
    refs = [m.group(1) for m in _RUNNER.finditer(command)]
    refs += [m.group(1) for m in _DIRECT.finditer(command)]
    refs += [m.group(1) for m in _INLINE_REQUIRE.finditer(command)]
    return list(
        dict.fromkeys(r for r in refs if not r.startswith(("-", "http")) and "://" not in r)
    )


def workspace_root(path: str, folder: str) -> str:
    """The folder that holds `folder` (.vscode, .devcontainer): where editor commands run."""
    slashed = "/" + path
    marker = f"/{folder}/"
    if marker in slashed:
        return slashed.rsplit(marker, 1)[0].lstrip("/")
    return posixpath.dirname(path)


def _key_line(ctx: FileContext, key: str, start: int = 0) -> int:
    at = ctx.text.find(f'"{key}"', start)
    return ctx.line_of(at) if at >= 0 else 1


def _load_json(ctx: FileContext) -> Any:
    try:
        return json.loads(ctx.text)
    except ValueError:
        return None


# --- things that run by themselves -----------------------------------------------------------


def npm_lifecycle(ctx: FileContext, rule: Rule) -> None:
    doc = _load_json(ctx)
    if not isinstance(doc, dict) or not isinstance(doc.get("scripts"), dict):
        return
    dangerous_only = bool(rule.params.get("dangerous"))
    scripts_at = ctx.text.find('"scripts"')
    for name in LIFECYCLE:
        command = doc["scripts"].get(name)
        if not isinstance(command, str) or not command.strip():
            continue
        line = _key_line(ctx, name, max(0, scripts_at))
        evidence = f'"{name}": {json.dumps(command)}'[:200]
        ctx.tag(AUTORUN, line, evidence)
        for ref in command_refs(command):
            ctx.reference(ref, line, evidence)
        if dangerous_only and not _DANGEROUS_CMD.search(command):
            continue
        ctx.report(rule, line, evidence, f"{rule.description} ({name})")


def _json_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _json_strings(v)


_JSONC_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _load_jsonc(text: str) -> Any:
    stripped = _JSONC_COMMENT.sub(lambda m: m.group(1) or "", text)
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", stripped))
    except ValueError:
        return None


def vscode_folder_open(ctx: FileContext, rule: Rule) -> None:
    matches = list(re.finditer(r'"runOn"\s*:\s*"folderOpen"', ctx.text))
    if not matches:
        return
    doc = _load_jsonc(ctx.text)
    commands: list[str] = []
    if isinstance(doc, dict):
        for task in doc.get("tasks", []) if isinstance(doc.get("tasks"), list) else []:
            if isinstance(task, dict) and "folderOpen" in json.dumps(task.get("runOptions")):
                commands.append(" ".join(_json_strings([task.get("command"), task.get("args")])))
                for os_key in ("linux", "osx", "windows"):
                    sub = task.get(os_key)
                    if isinstance(sub, dict):
                        commands.append(" ".join(_json_strings([sub.get("command")])))
    for m in matches:
        line = ctx.line_of(m.start())
        evidence = ctx.evidence_at(m.start())
        cmd = next((c for c in commands if c.strip()), "")
        if cmd:
            evidence = f"{evidence} command: {cmd}"[:200]
        ctx.tag(AUTORUN, line, evidence)
        ctx.report(rule, line, evidence)
    for cmd in commands:
        for ref in command_refs(cmd):
            ctx.reference(ref, 1, cmd[:200], base=workspace_root(ctx.path, ".vscode"))


def devcontainer_command(ctx: FileContext, rule: Rule) -> None:
    keys = [str(k) for k in rule.params.get("keys", [])]
    doc = _load_jsonc(ctx.text)
    for key in keys:
        m = re.search(rf'"{key}"\s*:', ctx.text)
        if m is None:
            continue
        line = ctx.line_of(m.start())
        value = doc.get(key) if isinstance(doc, dict) else None
        command = " ".join(_json_strings(value)) if value is not None else ""
        evidence = f'"{key}": {command}'[:200] if command else ctx.evidence_at(m.start())
        ctx.tag(AUTORUN, line, evidence)
        for ref in command_refs(command):
            ctx.reference(ref, line, evidence, base=workspace_root(ctx.path, ".devcontainer"))
        ctx.report(rule, line, evidence, f"{rule.description} ({key})")


# --- dependencies ----------------------------------------------------------------------------

_URL_SPEC = re.compile(
    r"^(?:git\+|git:|github:|gitlab:|bitbucket:|gist:|https?:|file:|link:)"
    r"|^[\w.-]+/[\w.-]+(?:#.*)?$",
    re.IGNORECASE,
)


def npm_dependency_source(ctx: FileContext, rule: Rule) -> None:
    doc = _load_json(ctx)
    if not isinstance(doc, dict):
        return
    for section in DEP_SECTIONS:
        deps = doc.get(section)
        if not isinstance(deps, dict):
            continue
        start = max(0, ctx.text.find(f'"{section}"'))
        for name, spec in deps.items():
            if isinstance(spec, str) and _URL_SPEC.search(spec.strip()) and not _inside(spec):
                line = _key_line(ctx, name, start)
                ctx.report(rule, line, f'"{name}": "{spec}"'[:200])


def _inside(spec: str) -> bool:
    """A file: or link: dependency inside the repository is just more of its code."""
    for prefix in ("file:", "link:"):
        if spec.startswith(prefix):
            target = posixpath.normpath(spec[len(prefix) :] or ".")
            return not target.startswith(("/", "..", "~"))
    return False


def _host_is_registry(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return hashlib.sha256(host.encode()).hexdigest() in _REGISTRY_HOSTS


def _outside_registry(url: str) -> bool:
    low = url.lower()
    if low.startswith("https://"):
        return not _host_is_registry(url)
    return low.startswith(("http://", "git", "file:", "github:", "ssh:", "link:"))


_YARN_RESOLVED = re.compile(r'^\s+resolved\s+"?([^"\s#]+)', re.MULTILINE)
_PNPM_TARBALL = re.compile(r"tarball:\s*['\"]?([^'\"\s}]+)")


def lockfile_source(ctx: FileContext, rule: Rule) -> None:
    urls: list[tuple[int, str]] = []
    if ctx.path.endswith(".json"):
        for m in re.finditer(r'"resolved"\s*:\s*"([^"]+)"', ctx.text):
            urls.append((m.start(), m.group(1)))
    elif ctx.path.endswith("yarn.lock"):
        urls = [(m.start(), m.group(1)) for m in _YARN_RESOLVED.finditer(ctx.text)]
    else:
        urls = [(m.start(), m.group(1)) for m in _PNPM_TARBALL.finditer(ctx.text)]
        urls += [
            (m.start(), m.group(1))
            for m in re.finditer(r"(?:repo|resolution):\s*['\"]?((?:git\+|https?://)\S+)", ctx.text)
        ]
    foreign_host = bool(rule.params.get("foreign_host"))
    for at, url in urls:
        if not _outside_registry(url):
            continue
        if url.lower().startswith("https://") is foreign_host:
            ctx.report(rule, ctx.line_of(at), ctx.evidence_at(at))


def _dl_distance_le1(a: str, b: str) -> bool:
    """True when a and b differ by exactly one edit (insert, delete, substitute, transpose)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def _norm_py(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def typosquat_candidates(name: str, popular: Iterable[str], min_len: int) -> str | None:
    pop = list(popular)
    if name in pop:
        return None
    for p in pop:
        if len(p) >= min_len and _dl_distance_le1(name, p):
            return p
    return None


_REQ_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:[<>=!~;\[@]|$)", re.MULTILINE)


def _pyproject_requirements(text: str) -> list[str]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    project = doc.get("project")
    if not isinstance(project, dict):
        return []
    return [s for s in project.get("dependencies", []) if isinstance(s, str)]


def typosquat(ctx: FileContext, rule: Rule) -> None:
    min_len = int(rule.params.get("min_length", 5))
    allow = {str(a) for a in rule.params.get("allow", [])}
    names: list[tuple[int, str]] = []
    if ctx.path.endswith("package.json"):
        popular = [str(p) for p in rule.params.get("npm", [])]
        doc = _load_json(ctx)
        if isinstance(doc, dict):
            for section in DEP_SECTIONS:
                deps = doc.get(section)
                if isinstance(deps, dict):
                    start = max(0, ctx.text.find(f'"{section}"'))
                    for name, spec in deps.items():
                        if isinstance(spec, str) and spec.startswith("npm:"):
                            continue  # an alias: the name is local, the package is named after it
                        at = ctx.text.find(f'"{name}"', start)
                        names.append((max(at, 0), str(name)))
    elif ctx.path.endswith(".toml"):
        popular = [_norm_py(str(p)) for p in rule.params.get("pypi", [])]
        for spec in _pyproject_requirements(ctx.text):
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if m:
                names.append((max(0, ctx.text.find(spec)), _norm_py(m.group(1))))
    else:
        popular = [_norm_py(str(p)) for p in rule.params.get("pypi", [])]
        for m in _REQ_LINE.finditer(ctx.text):
            names.append((m.start(1), _norm_py(m.group(1))))
    for at, name in names:
        if name in allow:
            continue
        near = typosquat_candidates(name, popular, min_len)
        if near is not None:
            ctx.report(
                rule,
                ctx.line_of(at),
                ctx.evidence_at(at),
                f"{rule.description}: {name!r} is one edit away from {near!r}",
            )


# --- binaries --------------------------------------------------------------------------------


def executable_format(data: bytes) -> str | None:
    head = data[:64]
    if head.startswith(b"\x7fELF"):
        return "ELF"
    if head.startswith(b"MZ") and len(data) >= 0x40:
        off = int.from_bytes(data[0x3C:0x40], "little")
        if data[off : off + 4] == b"PE\0\0":
            return "PE"
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ):
        return "Mach-O"
    # 0xCAFEBABE is also a Java class file; a fat Mach-O has few architectures there.
    if head[:4] == b"\xca\xfe\xba\xbe" and 0 < int.from_bytes(head[4:8], "big") < 20:
        return "Mach-O"
    return None


def executable_file(ctx: FileContext, rule: Rule) -> None:
    kind = executable_format(ctx.src.data)
    if kind is None:
        return
    disguised = ctx.path.lower().endswith(tuple(str(s) for s in rule.params.get("disguise", [])))
    if bool(rule.params.get("disguised")) != disguised:
        return
    evidence = f"{kind} executable, {ctx.src.size} bytes"
    ctx.tag(f"bin-file:{posixpath.basename(ctx.path).lower()}", 0, evidence)
    ctx.report(rule, 0, evidence)


# --- obfuscation -----------------------------------------------------------------------------


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_LONG_STRING = re.compile(r"""(["'`])([^"'`\n\\]{120,})\1""")


def plain_file_blob(ctx: FileContext, rule: Rule) -> None:
    max_line = int(rule.params.get("max_line", 500))
    min_entropy = float(rule.params.get("min_entropy", 4.8))
    offset = 0
    for line in ctx.text.split("\n"):
        if len(line) > max_line:
            ctx.report(
                rule,
                ctx.line_of(offset),
                ctx.evidence_at(offset),
                f"{rule.description} (a {len(line)}-character line)",
            )
            return
        offset += len(line) + 1
    for m in _LONG_STRING.finditer(ctx.text):
        if not m.group(2).isascii():
            continue  # payload blobs are base64 or hex; long emoji or prose strings are test data
        entropy = shannon_entropy(m.group(2))
        if entropy >= min_entropy:
            ctx.report(
                rule,
                ctx.line_of(m.start()),
                ctx.evidence_at(m.start()),
                f"{rule.description} (a {len(m.group(2))}-character string, "
                f"entropy {entropy:.1f} bits/char)",
            )
            return


_B64_LITERAL = re.compile(r"""["'`]([A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{16,}={0,2})["'`]""")
_HEX_LITERAL = re.compile(r"""["'`]((?:\\x[0-9a-fA-F]{2}){8,}|(?:[0-9a-fA-F]{2}){12,})["'`]""")
_CHAR_CODES = re.compile(r"fromCharCode\s*\(\s*((?:\d{2,3}\s*,\s*){5,}\d{2,3})\s*\)")
_URLISH = re.compile(r"(?:https?|wss?|ftp)://|\b(?:\d{1,3}\.){3}\d{1,3}\b|\.(?:com|net|org|io|ru)/")
_CODEISH = re.compile(
    r"require\s*\(|child_process|\beval\b|\bexec\b|subprocess|import\s+os|powershell|/bin/(?:ba)?sh"
    r"|process\.env|\bfetch\s*\(|os\.system|new\s+Function|__import__",
)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(ch.isprintable() or ch in "\r\n\t" for ch in text) < 0.95 * len(text):
        return None
    return text


def _decode_literal(lit: str) -> str | None:
    if lit.startswith("\\x"):
        return _printable(bytes(int(h, 16) for h in lit[2:].split("\\x")))
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", lit) and len(lit) % 2 == 0:
        hexed = _printable(binascii.unhexlify(lit))
        if hexed is not None:
            return hexed
    if len(lit) % 4 == 1:
        return None
    padded = lit + "=" * (-len(lit) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def encoded_strings(ctx: FileContext, rule: Rule) -> None:
    budget = int(rule.params.get("max_literals", 400))
    found_url = found_code = False
    candidates: list[tuple[int, str]] = []
    for m in _B64_LITERAL.finditer(ctx.text):
        candidates.append((m.start(), m.group(1)))
        if len(candidates) >= budget:
            break
    candidates += [(m.start(), m.group(1)) for m in _HEX_LITERAL.finditer(ctx.text)][:budget]
    for m in _CHAR_CODES.finditer(ctx.text):
        codes = [int(c) for c in re.findall(r"\d+", m.group(1))]
        if all(c < 0x110000 for c in codes):
            text = "".join(chr(c) for c in codes)
            candidates.append((m.start(), "\0" + text))
    for at, lit in candidates:
        decoded = lit[1:] if lit.startswith("\0") else _decode_literal(lit)
        if decoded is None:
            continue
        evidence = f"{ctx.evidence_at(at)[:100]} => {decoded[:80]!r}"
        if not found_url and _URLISH.search(decoded):
            found_url = True
            ctx.tag("threat:encoded-url", ctx.line_of(at), evidence, at)
        if not found_code and _CODEISH.search(decoded):
            found_code = True
            ctx.tag("threat:encoded-code", ctx.line_of(at), evidence, at)
        if found_url and found_code:
            break
    if found_url or found_code:
        hit = ctx.state.tags.get("threat:encoded-code") or ctx.state.tags["threat:encoded-url"]
        ctx.report(rule, hit.line, hit.evidence)


_CODE_MARKERS = re.compile(
    r"\brequire\s*\(|\bfunction\b|=>|\bimport\s|\beval\s*\(|\bexec\s*\(|\bconst\s|\bvar\s"
    r"|\bdef\s+\w+\s*\(|#!/"
)


def disguised_script(ctx: FileContext, rule: Rule) -> None:
    """A font, image or media file whose bytes are program text."""
    if ctx.binary or ctx.src.data[:4] in (b"wOF2", b"wOFF", b"\x89PNG", b"GIF8", b"<svg"):
        return
    m = _CODE_MARKERS.search(ctx.text[:65536])
    if m is None:
        return
    sample = ctx.text[:4096]
    if sum(ch.isprintable() or ch in "\r\n\t" for ch in sample) < 0.97 * len(sample):
        return
    ctx.report(rule, ctx.line_of(m.start()), ctx.evidence_at(m.start())[:120])


_MAKE_TARGET = re.compile(r"^([A-Za-z0-9_.-]+)(?:[ \t]+[^:=\n]*)?:(?!=)")
_FETCH_RUN = re.compile(
    r"\b(?:curl|wget)\b[^\n]*(?:\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|&&\s*(?:ba|z)?sh\s|-o\s*\S+\s*&&\s*chmod)"
    r"|\bnode\s+-e\b|base64\s+(?:-d|--decode)[^\n]*\|\s*(?:ba|z)?sh\b",
    re.IGNORECASE,
)


def make_fetch_run(ctx: FileContext, rule: Rule) -> None:
    """Make or just targets whose recipe downloads or decodes a script and runs it."""
    target = ""
    offset = 0
    for line in ctx.text.split("\n"):
        if line and not line[0].isspace() and not line.startswith("#"):
            m = _MAKE_TARGET.match(line)
            target = m.group(1) if m else ""
        elif target and line[:1] in ("\t", " ") and _FETCH_RUN.search(line):
            where = ctx.line_of(offset)
            evidence = f"{target}: {line.strip()}"[:200]
            ctx.tag(f"make-fetch:{target}", where, evidence)
            ctx.report(rule, where, evidence)
        offset += len(line) + 1


_DOC_MAKE = re.compile(r"(?:^|[`\s$>])(?:make|just)\s+([A-Za-z0-9_.-]+)")
_DOC_INLINE_CODE = re.compile(r"`([^`\n]{3,200})`")
_DOC_RUN_FILE = re.compile(
    r"(?:^|[`\s$>\\/])([\w.-]+\.(?:exe|msi|bat|cmd|scr|ps1|command|app|dmg|pkg|jar|sh|bin))\b",
    re.IGNORECASE,
)


def doc_run_instructions(ctx: FileContext, rule: Rule) -> None:
    """What a README tells the reader to run: make targets, files, scripts."""
    for m in _DOC_MAKE.finditer(ctx.text):
        ctx.tag(f"doc-make:{m.group(1)}", ctx.line_of(m.start(1)), ctx.evidence_at(m.start(1)))
    for m in _DOC_RUN_FILE.finditer(ctx.text):
        name = m.group(1).lower()
        ctx.tag(f"doc-run:{name}", ctx.line_of(m.start(1)), ctx.evidence_at(m.start(1)))
    # Scripts the reader is told to run (`node setup.js`, `./install.sh`) are on the execution
    # path as much as an install hook is.
    in_fence = False
    for n, text_line in enumerate(ctx.text.split("\n"), start=1):
        if text_line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        commands = [m.group(1) for m in _DOC_INLINE_CODE.finditer(text_line)]
        if in_fence or text_line.startswith("$ "):
            commands.append(text_line.removeprefix("$ "))
        for command in commands:
            for ref in command_refs(command):
                ctx.reference(ref, n, command.strip()[:200])
    first = min(
        (h for t, h in ctx.state.tags.items() if t.startswith(("doc-make:", "doc-run:"))),
        key=lambda h: h.line,
        default=None,
    )
    if first is not None:
        ctx.report(rule, first.line, first.evidence)


DETECTORS: dict[str, Detector] = {
    "make-fetch-run": make_fetch_run,
    "doc-run-instructions": doc_run_instructions,
    "disguised-script": disguised_script,
    "npm-lifecycle": npm_lifecycle,
    "vscode-folder-open": vscode_folder_open,
    "devcontainer-command": devcontainer_command,
    "npm-dependency-source": npm_dependency_source,
    "lockfile-source": lockfile_source,
    "typosquat": typosquat,
    "executable-file": executable_file,
    "plain-file-blob": plain_file_blob,
    "encoded-strings": encoded_strings,
}
