"""The generated signing key: private to its owner, made once and then reused as it is."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from impextech.platform.settings import Settings


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With no umask at all, only the mode the code asks for protects the file.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_generated_secret_key_file_is_readable_by_its_owner_only(
    tmp_path: Path, permissive_umask: None
) -> None:
    data_dir = tmp_path / "fresh"  # not there yet: made along with the key
    settings = Settings.from_env({"IMPEXTECH_DATA_DIR": str(data_dir)})
    path = data_dir / "secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.secret_key == path.read_text().strip().encode()
    assert len(settings.secret_key) >= 32


def test_an_existing_secret_key_file_is_reused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    path.write_text("an-existing-key-of-well-over-thirty-two-bytes\n")
    path.chmod(0o600)
    before = path.stat()
    for _ in range(2):
        settings = Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path)})
        assert settings.secret_key == b"an-existing-key-of-well-over-thirty-two-bytes"
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert path.read_text() == "an-existing-key-of-well-over-thirty-two-bytes\n"


def test_a_configured_secret_key_writes_no_file(tmp_path: Path) -> None:
    key = "k" * 40
    settings = Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path), "IMPEXTECH_SECRET_KEY": key})
    assert settings.secret_key == key.encode()
    assert not (tmp_path / "secret-key").exists()
