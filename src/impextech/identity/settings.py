"""The identity context's settings: tokens, hashing, sign-in limits, tenant names, e-mail."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Self
from urllib.parse import urlsplit

from impextech.kernel.settings import Env, Setting, SettingsError


@dataclass(frozen=True)
class IdentitySettings:
    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("IMPEXTECH_ACCESS_TOKEN_SECONDS", "900", "Access-token lifetime (at most 900)."),
        Setting("IMPEXTECH_REFRESH_TOKEN_DAYS", "14", "Refresh-token lifetime."),
        Setting("IMPEXTECH_SESSION_DAYS", "30", "A session ends this long after sign-in, "
                "however often it is refreshed."),
        Setting("IMPEXTECH_HASH_CONCURRENCY", "0",
                "Password hashes run at once (0: one per CPU)."),
        Setting("IMPEXTECH_BASE_DOMAINS", "localhost", "Comma-separated domains whose "
                "subdomains name a tenant (acme.localhost)."),
        Setting("IMPEXTECH_TENANT_CACHE_SECONDS", "5", "How long a web process trusts what it "
                "read of a marketplace (a suspension takes effect within this time)."),
        Setting("IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT", "10/900", "Failed sign-ins per "
                "account by browsers without its device cookie, as COUNT/SECONDS."),
        Setting("IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS", "100/900", "Failed sign-ins per "
                "client address (IPv4 address, IPv6 /64), any account, as COUNT/SECONDS."),
        Setting("IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE", "10/900", "Failed sign-ins by a "
                "browser holding the account's device cookie, as COUNT/SECONDS."),
        Setting("IMPEXTECH_SIGN_IN_BACKOFF_AFTER", "5", "Failures per account and address "
                "before each further attempt waits twice as long as the one before."),
        Setting("IMPEXTECH_SIGN_IN_BACKOFF_MAX_SECONDS", "900", "Longest such wait."),
        Setting("IMPEXTECH_DEVICE_COOKIE_DAYS", "90",
                "How long a device cookie vouches for a browser."),
        Setting("IMPEXTECH_SIGN_UPS_PER_ADDRESS", "30/3600",
                "Sign-ups per client address (every attempt counts), as COUNT/SECONDS."),
        Setting("IMPEXTECH_PASSWORD_CHANGE_FAILURES", "10/900",
                "Wrong current passwords per account on password change, as COUNT/SECONDS."),
        Setting("IMPEXTECH_MAIL_URL", "", "Where e-mail goes: empty for a file outbox under "
                "IMPEXTECH_DATA_DIR/outbox; file:///dir; smtp://host:25, "
                "smtp+starttls://user:pw@host:587 or smtps://user:pw@host:465."),
        Setting("IMPEXTECH_MAIL_FROM", "Impextech <no-reply@localhost>",
                "The sender of the platform's e-mail."),
        Setting("IMPEXTECH_MAIL_TIMEOUT", "10", "Longest one SMTP exchange may take, in seconds."),
        Setting("IMPEXTECH_PASSWORD_RESET_URL", "http://localhost:8000/console/reset-password",
                "The page a password-reset e-mail links to; ?token=… is appended."),
    )  # fmt: skip

    access_token_seconds: int
    refresh_token_days: int
    session_days: int
    hash_concurrency: int
    base_domains: tuple[str, ...]
    tenant_cache_seconds: float
    sign_in_failures_per_account: tuple[int, int]
    sign_in_failures_per_address: tuple[int, int]
    sign_in_failures_per_device: tuple[int, int]
    sign_in_backoff_after: int
    sign_in_backoff_max_seconds: int
    device_cookie_days: int
    sign_ups_per_address: tuple[int, int]
    password_change_failures: tuple[int, int]
    mail_url: str
    mail_from: str
    mail_timeout: float
    password_reset_url: str

    @classmethod
    def from_env(cls, env: Env) -> Self:
        if env.is_set("IMPEXTECH_AUTH_RATE_LIMIT"):
            # Silently ignoring it would leave an operator believing their old limit applies.
            raise SettingsError(
                "IMPEXTECH_AUTH_RATE_LIMIT was replaced by IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT,"
                " _PER_ADDRESS and _PER_DEVICE (failed sign-ins only; see the README)"
            )
        return cls(
            access_token_seconds=env.integer("IMPEXTECH_ACCESS_TOKEN_SECONDS", 1, 900),
            refresh_token_days=env.integer("IMPEXTECH_REFRESH_TOKEN_DAYS", 1, 365),
            session_days=env.integer("IMPEXTECH_SESSION_DAYS", 1, 365),
            hash_concurrency=(
                env.integer("IMPEXTECH_HASH_CONCURRENCY", 0, 256) or (os.cpu_count() or 1)
            ),
            base_domains=env.words("IMPEXTECH_BASE_DOMAINS", lower=True),
            tenant_cache_seconds=env.seconds("IMPEXTECH_TENANT_CACHE_SECONDS", 0.0, 300.0),
            sign_in_failures_per_account=_rate(env, "IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT"),
            sign_in_failures_per_address=_rate(env, "IMPEXTECH_SIGN_IN_FAILURES_PER_ADDRESS"),
            sign_in_failures_per_device=_rate(env, "IMPEXTECH_SIGN_IN_FAILURES_PER_DEVICE"),
            sign_in_backoff_after=env.integer("IMPEXTECH_SIGN_IN_BACKOFF_AFTER", 0, 1000),
            sign_in_backoff_max_seconds=env.integer(
                "IMPEXTECH_SIGN_IN_BACKOFF_MAX_SECONDS", 1, 86_400
            ),
            device_cookie_days=env.integer("IMPEXTECH_DEVICE_COOKIE_DAYS", 1, 400),
            sign_ups_per_address=_rate(env, "IMPEXTECH_SIGN_UPS_PER_ADDRESS"),
            password_change_failures=_rate(env, "IMPEXTECH_PASSWORD_CHANGE_FAILURES"),
            mail_url=_mail_url(env, "IMPEXTECH_MAIL_URL"),
            mail_from=env.raw("IMPEXTECH_MAIL_FROM"),
            mail_timeout=env.seconds("IMPEXTECH_MAIL_TIMEOUT", 0.1, 120.0),
            password_reset_url=_http_url(env, "IMPEXTECH_PASSWORD_RESET_URL"),
        )


def _rate(env: Env, name: str) -> tuple[int, int]:
    """COUNT/SECONDS, with a window of at most a day (older counters are pruned)."""
    raw = env.raw(name)
    try:
        count, _, seconds = raw.partition("/")
        rate = (int(count), int(seconds))
        if rate[0] < 1 or not 1 <= rate[1] <= 86_400:
            raise ValueError
    except ValueError:
        raise SettingsError(
            f"{name} must look like 10/900 (at most 86400 seconds), not {raw!r}"
        ) from None
    return rate


def _mail_url(env: Env, name: str) -> str:
    raw = env.raw(name)
    parts = urlsplit(raw)
    smtp = parts.scheme in ("smtp", "smtp+starttls", "smtps")
    if raw and not (parts.scheme == "file" or (smtp and parts.hostname)):
        raise SettingsError(
            f"{name} must be empty, file:///dir or smtp[s|+starttls]://host:port, not {raw!r}"
        )
    return raw


def _http_url(env: Env, name: str) -> str:
    raw = env.raw(name)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise SettingsError(f"{name} must be an http(s) URL, not {raw!r}")
    return raw
