"""The isolation tier: prints how many operations of the OpenAPI document it attacked."""

from __future__ import annotations

import pytest

# Filled by test_routes.py: operation ("METHOD /path") -> requests sent to it.
ATTACKED: pytest.StashKey[dict[str, int]] = pytest.StashKey()


def record_attack(config: pytest.Config, operation: str, requests: int) -> None:
    attacked = config.stash.setdefault(ATTACKED, {})
    attacked[operation] = attacked.get(operation, 0) + requests


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    attacked = terminalreporter.config.stash.get(ATTACKED, None)
    if attacked is None:
        return
    terminalreporter.write_sep("-", "tenant isolation")
    terminalreporter.write_line(
        f"routes attacked: {len(attacked)} operations of the OpenAPI document,"
        f" {sum(attacked.values())} requests as another tenant"
    )
