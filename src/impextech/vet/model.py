"""Value objects shared by every part of vet: severities, findings, the report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """How bad a finding is. INFO marks a signal that only counts in combination."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


class Verdict(enum.Enum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"


# Points per finding; the repository score is their sum, capped at 100.
SEVERITY_POINTS: dict[Severity, int] = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 5,
    Severity.HIGH: 20,
    Severity.CRITICAL: 50,
}
SUSPICIOUS_AT = 15
MALICIOUS_AT = 50


@dataclass(frozen=True)
class Finding:
    """One reportable observation, anchored to a file and line of the inspected input."""

    rule_id: str
    rule_name: str
    severity: Severity
    message: str
    path: str
    line: int
    evidence: str
    origin: str = ""

    @property
    def location(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else self.path
        return f"{self.origin}:{where}" if self.origin else where


@dataclass
class Report:
    target: str
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0
    origins: list[str] = field(default_factory=list)
    # INFO-level observations: inputs to combinations, not reported on their own.
    signals: list[Finding] = field(default_factory=list)

    @property
    def score(self) -> int:
        """Points of each distinct rule that fired, at its worst severity, capped at 100.

        Counting a rule once keeps a hundred prebuilt binaries or locale files from adding up
        to a verdict that one of them would not earn.
        """
        worst: dict[str, Severity] = {}
        for f in self.findings:
            worst[f.rule_id] = max(worst.get(f.rule_id, Severity.INFO), f.severity)
        return min(100, sum(SEVERITY_POINTS[s] for s in worst.values()))

    @property
    def verdict(self) -> Verdict:
        if any(f.severity is Severity.CRITICAL for f in self.findings):
            return Verdict.MALICIOUS
        score = self.score
        if score >= MALICIOUS_AT:
            return Verdict.MALICIOUS
        if score >= SUSPICIOUS_AT:
            return Verdict.SUSPICIOUS
        return Verdict.CLEAN

    def counts(self) -> dict[str, int]:
        out = {s.label: 0 for s in Severity if s is not Severity.INFO}
        for f in self.findings:
            out[f.severity.label] += 1
        return out

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)
