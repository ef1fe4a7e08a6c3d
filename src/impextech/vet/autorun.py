"""Which files run by themselves: those an install hook, task or README command names, and the
local modules they import, a few levels deep. Such files carry the AUTORUN tag for combinations.
"""

from __future__ import annotations

import posixpath
import re

from impextech.vet.filecontext import AUTORUN, FileState, Hit

CODE_SUFFIXES = (
    ".js", ".cjs", ".mjs", ".jsx", ".ts", ".cts", ".mts", ".tsx", ".py", ".pyw", ".sh",
    ".bash", ".zsh", ".ps1", ".bat", ".cmd", ".vbs", ".rb", ".php", ".pl", ".lua", ".coffee",
)  # fmt: skip

_RELATIVE_PATH = re.compile(r"""['"](\.{1,2}/[^'"\n]{1,200})['"]""")
_IMPORT_BEFORE = re.compile(r"(?:require\s*\(\s*|import\s*\(\s*|\bfrom\s+|\bimport\s+)$")

# A reference to a repository file: (origin, normalised path, where it was named).
Reference = tuple[str, str, Hit]
FileKey = tuple[str, str]


def local_imports(text: str) -> list[str]:
    """Relative modules a JavaScript or TypeScript file requires or imports."""
    found: list[str] = []
    for m in _RELATIVE_PATH.finditer(text):
        if _IMPORT_BEFORE.search(text, max(0, m.start() - 16), m.start()):
            found.append(m.group(1))
            if len(found) >= 200:
                break
    return found


def file_imports(path: str, text: str) -> list[str]:
    """The local imports of a code file worth following; none for any other file."""
    if path.lower().endswith(CODE_SUFFIXES) and ("require" in text or "import" in text):
        return local_imports(text)
    return []


def _resolve(states: dict[FileKey, FileState], origin: str, path: str) -> FileState | None:
    for cand in (path, *(path + s for s in (".js", ".cjs", ".mjs", ".ts", "/index.js"))):
        state = states.get((origin, cand))
        if state is not None:
            return state
    return None


def propagate_autorun(states: dict[FileKey, FileState], refs: list[Reference]) -> None:
    """Tag every referenced file, and what it imports up to three levels down, with AUTORUN."""
    queue: list[tuple[str, str, Hit, int]] = [(o, p, h, 0) for o, p, h in refs]
    while queue:
        origin, path, hit, depth = queue.pop()
        state = _resolve(states, origin, path)
        if state is None or AUTORUN in state.tags:
            continue
        state.tags[AUTORUN] = hit
        if depth < 3:
            base = posixpath.dirname(state.path)
            for imp in state.imports:
                target = posixpath.normpath(posixpath.join(base, imp))
                queue.append((origin, target, hit, depth + 1))
