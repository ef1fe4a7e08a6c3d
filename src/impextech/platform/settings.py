"""One typed settings object, read from the environment once, with safe defaults.

The platform's own section (database, server, secrets, logs) is here; each context declares its
own section (``<context>/settings.py``) and the contexts list brings it in, so the object holds
one typed section per context: ``settings.section(CatalogSettings).erp_url``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from impextech.kernel.settings import Env, Setting, SettingsError, SettingsSection

__all__ = ["PlatformSettings", "Settings", "SettingsError", "all_settings"]

S = TypeVar("S", bound=SettingsSection)


@dataclass(frozen=True)
class PlatformSettings:
    """Where the database is, how the server listens, the secret, the logs."""

    SETTINGS: ClassVar[tuple[Setting, ...]] = (
        Setting("DATABASE_URL", "", "Owner connection (libpq URL or key=value, multi-host "
                "allowed). Empty: the embedded cluster under IMPEXTECH_DATA_DIR/pg."),
        Setting("IMPEXTECH_APP_DATABASE_URL", "", "The application's connection. Empty: "
                "DATABASE_URL with the user and password replaced by the app role's."),
        Setting("IMPEXTECH_APP_DB_ROLE", "impextech_app",
                "The unprivileged role the app connects as."),
        Setting("IMPEXTECH_APP_DB_PASSWORD", "", "That role's password (none when embedded)."),
        Setting("IMPEXTECH_DATA_DIR", "./var", "Embedded cluster and generated secrets."),
        Setting("IMPEXTECH_HOST", "127.0.0.1", "Address the web server binds."),
        Setting("IMPEXTECH_PORT", "8000", "Port the web server binds."),
        Setting("IMPEXTECH_SECRET_KEY", "", "Signs access tokens and cursors (32+ bytes). "
                "Empty: generated once into IMPEXTECH_DATA_DIR/secret-key."),
        Setting("IMPEXTECH_CORS_ORIGINS", "",
                "Comma-separated origins allowed by CORS (empty: none)."),
        Setting("IMPEXTECH_MAX_BODY_BYTES", "1048576",
                "Largest request body accepted (413 above)."),
        Setting("IMPEXTECH_DB_POOL_SIZE", "10", "Database connections kept per web process."),
        Setting("IMPEXTECH_METRICS_TOKEN", "", "Bearer token that /metrics on the API's port "
                "asks for (16+ characters). Empty: /metrics is not served there (404)."),
        Setting("IMPEXTECH_LOG_FORMAT", "auto",
                "auto (JSON unless on a terminal), json or console."),
        Setting("IMPEXTECH_LOG_LEVEL", "info", "debug, info, warning or error."),
    )  # fmt: skip

    database_url: str | None
    app_database_url: str | None
    app_db_role: str
    app_db_password: str | None
    data_dir: Path
    host: str
    port: int
    secret_key: bytes
    cors_origins: tuple[str, ...]
    max_body_bytes: int
    db_pool_size: int
    metrics_token: str | None
    log_format: str
    log_level: str

    @classmethod
    def from_env(cls, env: Env) -> Self:
        data_dir = Path(env.raw("IMPEXTECH_DATA_DIR")).resolve()
        role = env.raw("IMPEXTECH_APP_DB_ROLE")
        if not role.replace("_", "").isalnum() or not role[0].isalpha():
            raise SettingsError(f"IMPEXTECH_APP_DB_ROLE {role!r} is not a plain role name")
        return cls(
            database_url=env.text("DATABASE_URL"),
            app_database_url=env.text("IMPEXTECH_APP_DATABASE_URL"),
            app_db_role=role,
            app_db_password=env.text("IMPEXTECH_APP_DB_PASSWORD"),
            data_dir=data_dir,
            host=env.raw("IMPEXTECH_HOST"),
            port=env.integer("IMPEXTECH_PORT", 0, 65535),
            secret_key=_secret(env.raw("IMPEXTECH_SECRET_KEY"), data_dir),
            cors_origins=env.words("IMPEXTECH_CORS_ORIGINS"),
            max_body_bytes=env.integer("IMPEXTECH_MAX_BODY_BYTES", 1024, 1 << 30),
            db_pool_size=env.integer("IMPEXTECH_DB_POOL_SIZE", 1, 200),
            metrics_token=_metrics_token(env.raw("IMPEXTECH_METRICS_TOKEN")),
            log_format=env.choice("IMPEXTECH_LOG_FORMAT", ("auto", "json", "console")),
            log_level=env.choice("IMPEXTECH_LOG_LEVEL", ("debug", "info", "warning", "error")),
        )


def _section_types() -> tuple[type[SettingsSection], ...]:
    from impextech.platform.contexts import CONTEXTS

    return tuple(c.settings for c in CONTEXTS if c.settings is not None)


def all_settings() -> tuple[Setting, ...]:
    """Every setting of the platform and of every context: the table the README documents."""
    return PlatformSettings.SETTINGS + tuple(
        s for section in _section_types() for s in section.SETTINGS
    )


@dataclass(frozen=True)
class Settings:
    """The platform's section, plus one section per context that declares one."""

    platform: PlatformSettings
    sections: Mapping[type[Any], object] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        platform = PlatformSettings.from_env(Env(environ, PlatformSettings.SETTINGS))
        sections = {kind: kind.from_env(Env(environ, kind.SETTINGS)) for kind in _section_types()}
        return cls(platform, sections)

    def section(self, kind: type[S]) -> S:
        value = self.sections.get(kind)
        if not isinstance(value, kind):
            raise SettingsError(f"no settings section {kind.__name__}: is its context listed?")
        return value

    def with_section(self, value: SettingsSection) -> Settings:
        """A copy with one section replaced (the demo points the ERP at its sandbox)."""
        return Settings(self.platform, {**self.sections, type(value): value})

    # The platform's own settings, read often enough to deserve a short path.
    @property
    def secret_key(self) -> bytes:
        return self.platform.secret_key

    @property
    def data_dir(self) -> Path:
        return self.platform.data_dir

    @property
    def embedded(self) -> bool:
        return self.platform.database_url is None


def _metrics_token(raw: str) -> str | None:
    if raw and (len(raw) < 16 or not raw.isprintable() or " " in raw):
        raise SettingsError("IMPEXTECH_METRICS_TOKEN must be 16+ printable characters, no spaces")
    return raw or None


def _secret(configured: str, data_dir: Path) -> bytes:
    if configured:
        if len(configured.encode()) < 32:
            raise SettingsError("IMPEXTECH_SECRET_KEY must be at least 32 bytes")
        return configured.encode()
    path = data_dir / "secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
