"""Read git history objects with dulwich: no git binary, no checkout, no hooks, no filters.

The git CLI honours settings in the inspected repository's own .git/config (core.fsmonitor,
core.hooksPath, filters, aliases) that can run commands; dulwich only parses objects.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from impextech.vet.items import InputError, Item, LimitBreach, Limits, SourceFile
from impextech.vet.sources import escapes_root

_REF_PREFIXES = (b"refs/heads/", b"refs/remotes/", b"refs/stash")


def is_git_dir(path: Path) -> bool:
    """A bare repository or a `.git` directory (objects, refs and HEAD side by side)."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def blob_id(data: bytes) -> bytes:
    """The git object id of a blob with this content (used to skip what the tree already showed)."""
    return Blob.from_string(data).id


def _commits_to_inspect(repo: Repo) -> list[tuple[str, ObjectID]]:
    found: list[tuple[str, ObjectID]] = []
    refs = repo.get_refs()
    for name in sorted(refs):
        if name.startswith(_REF_PREFIXES) and not name.endswith(b"/HEAD"):
            found.append((name.decode("utf-8", "replace"), refs[name]))
    head = refs.get(Ref(b"HEAD"))
    if head is not None and all(sha != head for _, sha in found):
        found.append(("HEAD", head))
    # Older stash entries live only in the stash reflog.
    try:
        entries = list(repo.read_reflog(Ref(b"refs/stash")))
    except (OSError, KeyError, ValueError):
        entries = []
    for n, entry in enumerate(reversed(entries)):
        if all(sha != entry.new_sha for _, sha in found):
            found.append((f"stash@{{{n}}}", entry.new_sha))
    return found


def _trees_of(repo: Repo, label: str, sha: ObjectID) -> Iterator[tuple[str, ObjectID]]:
    obj = repo.object_store[sha]
    for _ in range(10):
        if not isinstance(obj, Tag):
            break
        obj = repo.object_store[obj.object[1]]
    if not isinstance(obj, Commit):
        return
    yield label, obj.tree
    if label.startswith(("refs/stash", "stash@")):
        # A stash commit's second parent holds the index, its third the untracked files.
        for n, parent in enumerate(obj.parents[1:3], start=1):
            pobj = repo.object_store[parent]
            if isinstance(pobj, Commit):
                yield f"{label}^{n + 1}", pobj.tree


def iter_git(repo_path: Path, limits: Limits, seen: set[bytes] | None = None) -> Iterator[Item]:
    """Yield each distinct blob reachable from branch tips, remote branches and stashes.

    `seen` holds blob ids already inspected (for example from the working tree) and is updated.
    """
    try:
        repo = Repo(str(repo_path))
    except (NotGitRepository, OSError, ValueError) as exc:
        raise InputError(f"cannot read git repository {repo_path}: {exc}") from exc
    seen = set() if seen is None else seen
    count = 0
    total = 0
    with repo:
        try:
            commits = _commits_to_inspect(repo)
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"cannot read git refs in {repo_path}: {exc}") from exc
        for label, sha in commits:
            try:
                trees = list(_trees_of(repo, label, sha))
            except (KeyError, ValueError, OSError) as exc:
                yield LimitBreach("unreadable-entry", "", f"{label}: {exc}", origin=label)
                continue
            for origin, tree_id in trees:
                tree = repo.object_store[tree_id]
                if not isinstance(tree, Tree):
                    continue
                for entry in repo.object_store.iter_tree_contents(tree_id):
                    if entry.sha in seen:
                        continue
                    seen.add(entry.sha)
                    path = entry.path.decode("utf-8", "replace")
                    if stat.S_ISLNK(entry.mode):
                        target = repo.object_store[entry.sha].as_raw_string()[:4096]
                        text = target.decode("utf-8", "replace")
                        if escapes_root(posixpath.dirname(path), text):
                            yield LimitBreach("symlink-outside", path, f"-> {text}", origin)
                        continue
                    if not stat.S_ISREG(entry.mode):
                        continue  # submodule links: nothing stored here to read
                    count += 1
                    if count > limits.max_files:
                        yield LimitBreach(
                            "too-many-files", path, f"more than {limits.max_files} blobs", origin
                        )
                        return
                    blob = repo.object_store[entry.sha]
                    raw = blob.as_raw_string()
                    total += len(raw)
                    if total > limits.max_total_bytes:
                        yield LimitBreach(
                            "too-large", path, f"more than {limits.max_total_bytes} bytes", origin
                        )
                        return
                    yield SourceFile(path, raw[: limits.scan_bytes], len(raw), origin)
