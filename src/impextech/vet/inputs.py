"""Turn the path given to vet (directory, archive, git repository, single file) into its items.

This module only decides which readers apply and in what order, and names what was inspected;
the readers themselves live in `sources` (directories, zip, tar) and `gitsource` (history).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from impextech.vet.gitsource import blob_id, is_git_dir, iter_git
from impextech.vet.items import InputError, Item, Limits, SourceFile
from impextech.vet.sources import archive_kind, iter_directory, iter_tar, iter_zip


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
    """Everything vet will inspect for PATH, in a stable order.

    Appends to `origins` a label for each part read (working tree, git history, zip archive...).
    """
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
