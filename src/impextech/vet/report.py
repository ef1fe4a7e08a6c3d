"""Render a Report: Rich terminal text, JSON, SARIF 2.1.0."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from impextech.vet.model import Finding, Report, Severity, Verdict
from impextech.vet.rules import RuleSet

TOOL_NAME = "impextech-vet"
TOOL_VERSION = "0.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_VERDICT_STYLE = {
    Verdict.CLEAN: "bold green",
    Verdict.SUSPICIOUS: "bold yellow",
    Verdict.MALICIOUS: "bold white on red",
}

ADVICE = {
    Verdict.MALICIOUS: [
        "Do not run npm/yarn/pnpm install, pip install, make, or any script from this repository.",
        "Do not open the folder in VS Code or another editor that runs tasks or git integration; "
        "if you already did, treat this machine as compromised.",
        "If anything from it already ran: from a different, clean device change the passwords "
        "saved in your browsers, revoke SSH keys, cloud and API tokens, and move crypto funds "
        "to a new wallet.",
        "Delete the copy, and report the repository and the person who sent it to the platform "
        "where they contacted you.",
    ],
    Verdict.SUSPICIOUS: [
        "Do not install or run anything yet. Read the lines listed above; "
        "each one names the file and line to look at.",
        "If you cannot explain a finding, ask the sender about it, or inspect the code only "
        "inside a disposable virtual machine with no keys, wallets or browser logins.",
    ],
    Verdict.CLEAN: [
        "Nothing that runs by itself or hides code was found. This is not a guarantee: "
        "still prefer a disposable virtual machine or container for code from strangers.",
    ],
}


def _severity_at_least(report: Report, floor: Severity) -> list[Finding]:
    return [f for f in report.findings if f.severity >= floor]


def render_text(report: Report, console: Console, min_severity: Severity = Severity.LOW) -> None:
    verdict = report.verdict
    header = Text.assemble(
        ("vet ", "bold"),
        (report.target, "bold"),
        "  verdict: ",
        (verdict.value.upper(), _VERDICT_STYLE[verdict]),
        f"  score: {report.score}/100  files: {report.files_scanned}  "
        f"bytes: {report.bytes_scanned}",
    )
    console.print(header)
    if report.origins:
        console.print(Text("inspected: " + ", ".join(report.origins), style="dim"))
    shown = _severity_at_least(report, min_severity)
    for sev in sorted(Severity, reverse=True):
        group = [f for f in shown if f.severity is sev]
        if not group:
            continue
        console.print()
        console.print(Text(f"{sev.label.upper()} ({len(group)})", style=_STYLE[sev]))
        for f in group:
            line = Text("  ")
            line.append(f"[{f.rule_id}] ", style=_STYLE[sev])
            line.append(f.location, style="bold")
            line.append(f"  {f.message}")
            console.print(line)
            if f.evidence:
                console.print(Text(f"      {f.evidence}", style="dim"), soft_wrap=True)
    if not shown:
        console.print(Text("\nNo findings.", style="green"))
    console.print()
    body = "\n".join(f"• {escape(item)}" for item in ADVICE[verdict])
    console.print(Panel(body, title="What to do now", border_style=_VERDICT_STYLE[verdict]))


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule": f.rule_name,
        "severity": f.severity.label,
        "message": f.message,
        "path": f.path,
        "line": f.line,
        "origin": f.origin,
        "evidence": f.evidence,
    }


def to_json(report: Report) -> dict[str, Any]:
    return {
        "tool": TOOL_NAME,
        "version": TOOL_VERSION,
        "target": report.target,
        "verdict": report.verdict.value,
        "score": report.score,
        "files_scanned": report.files_scanned,
        "bytes_scanned": report.bytes_scanned,
        "inspected": report.origins,
        "counts": report.counts(),
        "findings": [_finding_json(f) for f in report.findings],
    }


_SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "none",
}
# GitHub code scanning reads this property (a CVSS-like number) to rank security results.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(path: str) -> str:
    return quote(path.lstrip("/"), safe="/-._~")


def to_sarif(report: Report, rules: RuleSet) -> dict[str, Any]:
    used = sorted({f.rule_id for f in report.findings})
    index = {rid: i for i, rid in enumerate(used)}
    sarif_rules = []
    for rid in used:
        rule = rules.get(rid)
        sarif_rules.append(
            {
                "id": rule.id,
                "name": rule.name,
                "shortDescription": {"text": rule.description},
                "fullDescription": {"text": rule.description},
                "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
                "properties": {
                    "tags": ["security", "malware", rule.kind],
                    "security-severity": _SECURITY_SEVERITY[rule.severity],
                },
            }
        )
    results = []
    for f in report.findings:
        region: dict[str, Any] = {}
        if f.line > 0:
            region["startLine"] = f.line
            if f.evidence:
                region["snippet"] = {"text": f.evidence}
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.path)}}
        if region:
            physical["region"] = region
        message = f.message + (f" (in {f.origin})" if f.origin else "")
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": message},
            "locations": [{"physicalLocation": physical}],
            "partialFingerprints": {
                "vetFinding/v1": f"{f.rule_id}:{f.origin}:{f.path}:{f.evidence[:80]}"
            },
            "properties": {"severity": f.severity.label, "evidence": f.evidence},
        }
        if f.origin:
            result["properties"]["origin"] = f.origin
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": TOOL_VERSION,
                        "rules": sarif_rules,
                    }
                },
                "results": results,
                "invocations": [{"executionSuccessful": True}],
                "properties": {
                    "verdict": report.verdict.value,
                    "score": report.score,
                    "filesScanned": report.files_scanned,
                },
            }
        ],
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
