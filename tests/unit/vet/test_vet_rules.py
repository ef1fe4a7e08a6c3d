from __future__ import annotations

from pathlib import Path

import pytest

from impextech.vet.model import Severity
from impextech.vet.rules import Rule, RuleError, default_ruleset, parse_ruleset

from .vet_helpers import fired, scan_example

RULES = default_ruleset().rules


def test_rule_set_shape() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    kinds = {k: sum(r.kind == k for r in RULES) for k in ("input", "pattern", "builtin", "combo")}
    assert kinds == {"input": 7, "pattern": 35, "builtin": 17, "combo": 16}
    assert all(r.description and r.name for r in RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.id}-{r.name}")
def test_positive_example_fires(rule: Rule, tmp_path: Path) -> None:
    assert rule.id in fired(scan_example(rule.positive, tmp_path))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.id}-{r.name}")
def test_negative_example_does_not_fire(rule: Rule, tmp_path: Path) -> None:
    assert rule.id not in fired(scan_example(rule.negative, tmp_path))


_GOOD = """
[[rule]]
id = "X1"
name = "x"
kind = "pattern"
severity = "low"
description = "d"
patterns = ['abc']
[rule.positive]
path = "a.js"
content = "abc"
[rule.negative]
path = "a.js"
content = "xyz"
"""


def test_parse_minimal_rule() -> None:
    rs = parse_ruleset({"a.toml": _GOOD})
    (rule,) = rs.rules
    assert (rule.id, rule.severity, rule.positive.files) == ("X1", Severity.LOW, {"a.js": b"abc"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _GOOD.replace('kind = "pattern"', 'kind = "magic"'),
            "a.toml: rule X1: unknown kind 'magic'",
        ),
        (
            _GOOD.replace('severity = "low"', 'severity = "dire"'),
            "a.toml: rule X1: unknown severity",
        ),
        (_GOOD.replace("patterns = ['abc']", "patterns = ['(']"), "a.toml: rule X1: bad pattern"),
        (_GOOD.replace("patterns = ['abc']", ""), "a.toml: rule X1: a pattern rule needs patterns"),
        (_GOOD.replace('description = "d"', ""), "a.toml: rule X1: missing 'description'"),
        (_GOOD + _GOOD, "a.toml: duplicate rule id X1"),
    ],
)
def test_malformed_rules_are_refused(text: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_ruleset({"a.toml": text})
    assert str(info.value).startswith(message)


def test_user_doc_lists_every_rule() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "vet.md").read_text()
    listed = [line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| VET")]
    assert listed == sorted(r.id for r in RULES)
