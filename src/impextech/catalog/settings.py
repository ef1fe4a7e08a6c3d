"""The catalog context's settings: the tenants' ERP and how patiently it is called."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self
from urllib.parse import urlsplit

from impextech.kernel.settings import Env, Setting, SettingsError


@dataclass(frozen=True)
class CatalogSettings:
    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("IMPEXTECH_ERP_URL", "", "Base URL of the tenants' ERP (e.g. "
                "http://127.0.0.1:8100 for `impextech sandbox erp`). Empty: no ERP, and the ERP "
                "sync is a recorded no-op."),
        Setting("IMPEXTECH_ERP_TIMEOUT", "5", "Longest one ERP call may take, in seconds "
                "(connect at most 3 of them); a slower call counts as a failure."),
        Setting("IMPEXTECH_ERP_BREAKER_FAILURES", "5", "Consecutive ERP failures that open the "
                "circuit breaker; ERP jobs then wait instead of calling."),
        Setting("IMPEXTECH_ERP_BREAKER_COOL_DOWN", "30", "Seconds the ERP breaker stays open "
                "before one probe call may try the ERP again."),
    )  # fmt: skip

    erp_url: str | None
    erp_timeout: float
    erp_breaker_failures: int
    erp_breaker_cool_down: float

    @classmethod
    def from_env(cls, env: Env) -> Self:
        return cls(
            erp_url=_erp_url(env.raw("IMPEXTECH_ERP_URL")),
            erp_timeout=env.seconds("IMPEXTECH_ERP_TIMEOUT", 0.1, 25.0),
            erp_breaker_failures=env.integer("IMPEXTECH_ERP_BREAKER_FAILURES", 1, 1000),
            erp_breaker_cool_down=env.seconds("IMPEXTECH_ERP_BREAKER_COOL_DOWN", 0.1, 3600.0),
        )


def _erp_url(raw: str) -> str | None:
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(
            "IMPEXTECH_ERP_URL must be an http(s) base URL such as http://127.0.0.1:8100,"
            f" not {raw!r}"
        )
    return raw.rstrip("/")
