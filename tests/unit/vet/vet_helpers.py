"""Build rule examples (plain files or archives) and scan them."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile
from pathlib import Path

from impextech.vet.engine import scan_path
from impextech.vet.items import Limits, SourceFile
from impextech.vet.model import Report
from impextech.vet.rules import Example
from impextech.vet.scanner import scan_items


def write_zip(target: Path, example: Example) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in example.files.items():
            method = zipfile.ZIP_STORED if name in example.corrupt else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
        for name, dest in example.symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            zf.writestr(info, dest)
    raw = buf.getvalue()
    for name in example.corrupt:
        data = example.files[name]
        raw = raw.replace(data, bytes(b ^ 0x20 for b in data), 1)
    target.write_bytes(raw)


def write_tar(target: Path, example: Example) -> None:
    with tarfile.open(target, "w:gz") as tf:
        for name, data in example.files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, dest in example.symlinks.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = dest
            tf.addfile(info)
        for name in example.devices:
            info = tarfile.TarInfo(name)
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 4, 0
            tf.addfile(info)


def scan_example(example: Example, tmp: Path) -> Report:
    if example.archive:
        limits = dataclasses.replace(Limits(), **example.limits)
        suffix = ".zip" if example.archive == "zip" else ".tar.gz"
        target = tmp / f"example{suffix}"
        (write_zip if example.archive == "zip" else write_tar)(target, example)
        return scan_path(target, limits=limits)
    items = [SourceFile(p, d, len(d)) for p, d in example.files.items()]
    return scan_items(items)


def fired(report: Report) -> set[str]:
    return {f.rule_id for f in report.findings} | {s.rule_id for s in report.signals}
