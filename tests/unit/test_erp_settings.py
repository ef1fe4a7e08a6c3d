"""The ERP settings: safe defaults, and a clear refusal of values that make no sense."""

from __future__ import annotations

from pathlib import Path

import pytest

from impextech.catalog.settings import CatalogSettings
from impextech.platform.settings import Settings, SettingsError

BASE = {"IMPEXTECH_SECRET_KEY": "x" * 40}


def settings(tmp_path: Path, **env: str) -> CatalogSettings:
    return Settings.from_env({**BASE, "IMPEXTECH_DATA_DIR": str(tmp_path), **env}).section(
        CatalogSettings
    )


def test_by_default_no_erp_is_configured_and_the_limits_are_safe(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.erp_url is None
    assert (s.erp_timeout, s.erp_breaker_failures, s.erp_breaker_cool_down) == (5.0, 5, 30.0)


def test_erp_settings_are_read(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        IMPEXTECH_ERP_URL="http://127.0.0.1:8100/",
        IMPEXTECH_ERP_TIMEOUT="0.5",
        IMPEXTECH_ERP_BREAKER_FAILURES="3",
        IMPEXTECH_ERP_BREAKER_COOL_DOWN="2.5",
    )
    assert s.erp_url == "http://127.0.0.1:8100"
    assert (s.erp_timeout, s.erp_breaker_failures, s.erp_breaker_cool_down) == (0.5, 3, 2.5)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMPEXTECH_ERP_URL", "127.0.0.1:8100", "http(s) base URL"),
        ("IMPEXTECH_ERP_URL", "ftp://erp.example", "http(s) base URL"),
        ("IMPEXTECH_ERP_URL", "http://erp.example/?x=1", "http(s) base URL"),
        ("IMPEXTECH_ERP_TIMEOUT", "soon", "a number of seconds"),
        ("IMPEXTECH_ERP_TIMEOUT", "0", "between 0.1 and 25"),
        ("IMPEXTECH_ERP_TIMEOUT", "nan", "between 0.1 and 25"),
        ("IMPEXTECH_ERP_TIMEOUT", "60", "between 0.1 and 25"),
        ("IMPEXTECH_ERP_BREAKER_FAILURES", "0", "between 1 and 1000"),
        ("IMPEXTECH_ERP_BREAKER_COOL_DOWN", "-1", "between 0.1 and 3600"),
    ],
)
def test_bad_erp_settings_are_refused_by_name(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=name) as caught:
        settings(tmp_path, **{name: value})
    assert message in str(caught.value)
