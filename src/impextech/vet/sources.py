"""Read a directory, a zip or a tar archive without running or extracting anything.

Every reader yields `SourceFile`s (a path, a bounded prefix of the content, the real size) and
`LimitBreach`es. A breached limit or a dangerous archive member is reported as a finding by the
scanner; only an input that cannot be read at all raises `InputError`. Git history is read by
`gitsource`.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from impextech.vet.items import InputError, Item, LimitBreach, Limits, SourceFile


def archive_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return None


def escapes_root(link_dir: str, target: str) -> bool:
    """True when a link target, resolved from link_dir, leaves the inspected root."""
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return True
    joined = posixpath.normpath(posixpath.join(link_dir, target))
    return joined == ".." or joined.startswith("../")


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    parts = name.replace("\\", "/").split("/")
    return ".." in parts


def _read_prefix(stream: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- directories -----------------------------------------------------------------------------


def iter_directory(root: Path, limits: Limits, skip_git: bool = True) -> Iterator[Item]:
    count = 0
    total = 0
    root_s = str(root)
    for dirpath, dirnames, filenames in os.walk(root_s, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root_s)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        if skip_git and ".git" in dirnames:
            dirnames.remove(".git")
        dirnames.sort()
        # Symlinked directories are listed in dirnames but not descended into: check them here.
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                dirnames.remove(d)
                filenames.append(d)
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError as exc:
                yield LimitBreach("unreadable-entry", rel, str(exc))
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                if escapes_root(rel_dir, target):
                    yield LimitBreach("symlink-outside", rel, f"-> {target}")
                continue
            if not stat.S_ISREG(st.st_mode):
                yield LimitBreach("special-file", rel, _mode_name(st.st_mode))
                continue
            count += 1
            if count > limits.max_files:
                yield LimitBreach("too-many-files", rel, f"more than {limits.max_files} files")
                return
            total += st.st_size
            if total > limits.max_total_bytes:
                yield LimitBreach("too-large", rel, f"more than {limits.max_total_bytes} bytes")
                return
            try:
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                yield LimitBreach("unreadable-entry", rel, str(exc))
                continue
            with os.fdopen(fd, "rb") as fh:
                data = _read_prefix(fh, limits.scan_bytes)
            yield SourceFile(rel, data, st.st_size)


def _mode_name(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


# --- zip -------------------------------------------------------------------------------------


def iter_zip(path: Path, limits: Limits) -> Iterator[Item]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"cannot read zip archive {path}: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            yield LimitBreach(
                "too-many-files", "", f"{len(infos)} entries (limit {limits.max_files})"
            )
            infos = infos[: limits.max_files]
        total = 0
        for info in infos:
            name = info.filename
            if _unsafe_name(name):
                yield LimitBreach("path-traversal", name, "entry name leaves the archive root")
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                with zf.open(info) as fh:
                    target = fh.read(4096).decode("utf-8", "replace")
                if escapes_root(posixpath.dirname(name), target):
                    yield LimitBreach("symlink-outside", name, f"-> {target}")
                continue
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                yield LimitBreach("special-file", name, _mode_name(mode))
                continue
            if (
                info.file_size > limits.ratio_floor_bytes
                and info.file_size > limits.max_ratio * max(1, info.compress_size)
            ):
                yield LimitBreach(
                    "compression-ratio",
                    name,
                    f"{info.file_size} bytes from {info.compress_size} compressed",
                )
                continue
            total += info.file_size
            if total > limits.max_total_bytes:
                yield LimitBreach("too-large", name, f"more than {limits.max_total_bytes} bytes")
                return
            try:
                with zf.open(info) as fh:
                    data = _read_prefix(fh, limits.scan_bytes)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                yield LimitBreach("unreadable-entry", name, str(exc))
                continue
            yield SourceFile(name.lstrip("/"), data, info.file_size)


# --- tar -------------------------------------------------------------------------------------


def iter_tar(path: Path, limits: Limits) -> Iterator[Item]:
    try:
        tf = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed below, generator body
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"cannot read tar archive {path}: {exc}") from exc
    archive_size = max(1, path.stat().st_size)
    count = 0
    total = 0
    try:
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                if count == 0:
                    raise InputError(f"cannot read tar archive {path}: {exc}") from exc
                yield LimitBreach("unreadable-entry", "", f"archive is damaged: {exc}")
                return
            if member is None:
                return
            name = member.name
            if _unsafe_name(name):
                yield LimitBreach("path-traversal", name, "entry name leaves the archive root")
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                base = posixpath.dirname(name) if member.issym() else ""
                if escapes_root(base, member.linkname):
                    yield LimitBreach("symlink-outside", name, f"-> {member.linkname}")
                continue
            if not member.isfile():
                kind = (
                    "character device"
                    if member.ischr()
                    else "block device"
                    if member.isblk()
                    else "named pipe"
                    if member.isfifo()
                    else "special file"
                )
                yield LimitBreach("special-file", name, kind)
                continue
            count += 1
            if count > limits.max_files:
                yield LimitBreach("too-many-files", name, f"more than {limits.max_files} files")
                return
            total += member.size
            if total > limits.max_total_bytes:
                yield LimitBreach("too-large", name, f"more than {limits.max_total_bytes} bytes")
                return
            if total > limits.ratio_floor_bytes and total > limits.max_ratio * archive_size:
                yield LimitBreach(
                    "compression-ratio",
                    name,
                    f"{total} bytes expanded from a {archive_size}-byte archive",
                )
                return
            fh = tf.extractfile(member)
            if fh is None:
                continue
            with fh:
                data = _read_prefix(fh, limits.scan_bytes)
            yield SourceFile(name.lstrip("/").removeprefix("./"), data, member.size)
    finally:
        tf.close()
