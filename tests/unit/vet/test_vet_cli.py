from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from impextech.vet.cli import register

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-rtm.5.json").read_text())


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Stand-in for the platform CLI, which registers vet beside other commands."""

    register(app)
    return app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["vet", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def evil_repo(tmp_path: Path) -> Path:
    root = tmp_path / "evil"
    (root / ".vscode").mkdir(parents=True)
    (root / ".vscode" / "tasks.json").write_text(
        '{"version": "2.0.0", "tasks": [{"label": "i", "type": "shell",\n'
        '  "command": "node public/fonts/fa-solid-400.woff2",\n'
        '  "runOptions": {"runOn": "folderOpen"}}]}\n'
    )
    (root / "package.json").write_text('{"name": "shop", "scripts": {"start": "node server.js"}}')
    return root


@pytest.fixture
def clean_repo(tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    root.mkdir()
    (root / "index.js").write_text("module.exports = (a, b) => a + b;\n")
    (root / "package.json").write_text('{"name": "add", "version": "1.0.0"}')
    return root


def test_clean_repository_exits_zero(clean_repo: Path) -> None:
    code, out, err = run(str(clean_repo), "--format", "json")
    doc = json.loads(out)
    assert (code, err) == (0, "")
    assert (doc["verdict"], doc["score"], doc["findings"], doc["files_scanned"]) == (
        "clean", 0, [], 2,
    )  # fmt: skip


def test_findings_at_threshold_exit_one(evil_repo: Path) -> None:
    code, out, _ = run(str(evil_repo), "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert [(f["rule_id"], f["path"], f["line"]) for f in doc["findings"]] == [
        ("VET103", ".vscode/tasks.json", 3)
    ]
    assert doc["verdict"] == "suspicious"
    assert doc["counts"] == {"low": 0, "medium": 0, "high": 1, "critical": 0}


@pytest.mark.parametrize(("fail_on", "expected"), [("critical", 0), ("never", 0), ("low", 1)])
def test_fail_on_threshold(evil_repo: Path, fail_on: str, expected: int) -> None:
    assert run(str(evil_repo), "--fail-on", fail_on, "-f", "json")[0] == expected


def test_sarif_output_is_valid_against_the_schema(evil_repo: Path) -> None:
    (evil_repo / "lib").mkdir()
    (evil_repo / "lib" / "a b.js").write_text("fetch(u).then(r => r.text()).then(eval);\n")
    code, out, _ = run(str(evil_repo), "--format", "sarif")
    doc: dict[str, Any] = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    run_ = doc["runs"][0]
    assert code == 1
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == ["VET103", "VET202"]
    results = [
        (r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in run_["results"]
    ]
    assert results == [
        ("VET202", "error", "lib/a%20b.js"),
        ("VET103", "error", ".vscode/tasks.json"),
    ]


def test_sarif_for_a_clean_repository_is_valid(clean_repo: Path) -> None:
    code, out, _ = run(str(clean_repo), "--format", "sarif")
    doc = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert (code, doc["runs"][0]["results"]) == (0, [])


def test_text_report_names_lines_and_advises(evil_repo: Path) -> None:
    code, out, _ = run(str(evil_repo))
    assert code == 1
    assert "SUSPICIOUS" in out
    assert "[VET103] .vscode/tasks.json:3" in out
    assert "What to do now" in out
    assert "Do not install or run anything yet" in out


def test_output_file(evil_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run(str(evil_repo), "-f", "json", "-o", str(target))
    assert (code, out) == (1, "")
    assert json.loads(target.read_text())["verdict"] == "suspicious"


MISSING = "missing PATH (a directory, .zip, .tar, .tar.gz/.tgz or git repository)"
BAD_FORMAT = "unknown format 'xml' (expected one of: text, json, sarif)"
BAD_FAIL_ON = "unknown --fail-on 'dire' (expected one of: low, medium, high, critical, never)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), MISSING),
        (("/no/such/dir",), "no such file or directory: /no/such/dir"),
        ((".", "--format", "xml"), BAD_FORMAT),
        ((".", "--fail-on", "dire"), BAD_FAIL_ON),
    ],
)
def test_bad_input_is_one_line_and_exit_two(args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert (code, out, err) == (2, "", f"vet: error: {message}\n")


def test_unreadable_archive_is_exit_two(tmp_path: Path) -> None:
    bad = tmp_path / "repo.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    code, out, err = run(str(bad))
    assert (code, out) == (2, "")
    assert err.startswith(f"vet: error: cannot read zip archive {bad}: ")
    assert err.count("\n") == 1


def test_progress_bar_path_on_a_large_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from impextech.vet.cli import PROGRESS_MIN_FILES, _scan_with_progress

    for i in range(PROGRESS_MIN_FILES):
        (tmp_path / f"f{i}.js").write_text("module.exports = 1;\n")
    (tmp_path / "x.js").write_text("eval(atob(p));\n")
    report = _scan_with_progress(tmp_path, show=True)
    assert report.files_scanned == PROGRESS_MIN_FILES + 1
    assert [f.rule_id for f in report.findings] == ["VET201"]
    capsys.readouterr()
