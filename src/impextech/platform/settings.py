"""One typed settings object, read from the environment once, with safe defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from impextech.kernel.domain.errors import ImpextechError


class SettingsError(ImpextechError):
    code = "bad-setting"


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


# The table the README documents: every setting, its environment variable and default.
SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "", "Owner connection (libpq URL or key=value, multi-host allowed). "
            "Empty: the embedded cluster under IMPEXTECH_DATA_DIR/pg."),
    Setting("IMPEXTECH_APP_DATABASE_URL", "", "The application's connection. Empty: "
            "DATABASE_URL with the user and password replaced by the app role's."),
    Setting("IMPEXTECH_APP_DB_ROLE", "impextech_app", "The unprivileged role the app connects as."),
    Setting("IMPEXTECH_APP_DB_PASSWORD", "", "That role's password (none when embedded)."),
    Setting("IMPEXTECH_DATA_DIR", "./var", "Embedded cluster and generated secrets."),
    Setting("IMPEXTECH_HOST", "127.0.0.1", "Address the web server binds."),
    Setting("IMPEXTECH_PORT", "8000", "Port the web server binds."),
    Setting("IMPEXTECH_SECRET_KEY", "", "Signs access tokens and cursors (32+ bytes). Empty: "
            "generated once into IMPEXTECH_DATA_DIR/secret-key."),
    Setting("IMPEXTECH_ACCESS_TOKEN_SECONDS", "900", "Access-token lifetime (at most 900)."),
    Setting("IMPEXTECH_REFRESH_TOKEN_DAYS", "14", "Refresh-token lifetime."),
    Setting("IMPEXTECH_AUTH_RATE_LIMIT", "10/900", "Login/register/password attempts allowed "
            "per client address and per account, as COUNT/SECONDS."),
    Setting("IMPEXTECH_HASH_CONCURRENCY", "0", "Password hashes run at once (0: one per CPU)."),
    Setting("IMPEXTECH_CORS_ORIGINS", "", "Comma-separated origins allowed by CORS (empty: none)."),
    Setting("IMPEXTECH_MAX_BODY_BYTES", "1048576", "Largest request body accepted (413 above)."),
    Setting("IMPEXTECH_BASE_DOMAINS", "localhost", "Comma-separated domains whose subdomains "
            "name a tenant (acme.localhost)."),
    Setting("IMPEXTECH_DB_POOL_SIZE", "10", "Database connections kept per web process."),
    Setting("IMPEXTECH_WORKER_QUEUES", "urgent:4,default:4,bulk:2", "Queues a worker serves, "
            "each with its own concurrency, so bulk work never takes urgent work's slots."),
    Setting("IMPEXTECH_JOB_LEASE_SECONDS", "30", "A job whose worker sent no heartbeat for "
            "this long (killed, frozen, cut off) is handed to another worker."),
    Setting("IMPEXTECH_WORKER_DRAIN_SECONDS", "30", "On SIGTERM, how long running jobs may "
            "finish before they are released back to the queue."),
    Setting("IMPEXTECH_ERP_URL", "", "Base URL of the tenants' ERP (e.g. http://127.0.0.1:8100 "
            "for `impextech sandbox erp`). Empty: no ERP, and the ERP sync is a recorded no-op."),
    Setting("IMPEXTECH_ERP_TIMEOUT", "5", "Longest one ERP call may take, in seconds (connect "
            "at most 3 of them); a slower call counts as a failure."),
    Setting("IMPEXTECH_ERP_BREAKER_FAILURES", "5", "Consecutive ERP failures that open the "
            "circuit breaker; ERP jobs then wait instead of calling."),
    Setting("IMPEXTECH_ERP_BREAKER_COOL_DOWN", "30", "Seconds the ERP breaker stays open before "
            "one probe call may try the ERP again."),
    Setting("IMPEXTECH_LOG_FORMAT", "auto", "auto (JSON unless on a terminal), json or console."),
    Setting("IMPEXTECH_LOG_LEVEL", "info", "debug, info, warning or error."),
)  # fmt: skip

_DEFAULTS = {s.env: s.default for s in SETTINGS}


def _get(env: dict[str, str], name: str) -> str:
    return env.get(name, _DEFAULTS[name]).strip()


def _int(env: dict[str, str], name: str, low: int, high: int) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    app_database_url: str | None
    app_db_role: str
    app_db_password: str | None
    data_dir: Path
    host: str
    port: int
    secret_key: bytes
    access_token_seconds: int
    refresh_token_days: int
    auth_rate_limit: tuple[int, int]
    hash_concurrency: int
    cors_origins: tuple[str, ...]
    max_body_bytes: int
    base_domains: tuple[str, ...]
    db_pool_size: int
    worker_queues: tuple[tuple[str, int], ...]
    job_lease_seconds: int
    worker_drain_seconds: int
    erp_url: str | None
    erp_timeout: float
    erp_breaker_failures: int
    erp_breaker_cool_down: float
    log_format: str
    log_level: str

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(_get(env, "IMPEXTECH_DATA_DIR")).resolve()
        role = _get(env, "IMPEXTECH_APP_DB_ROLE")
        if not role.replace("_", "").isalnum() or not role[0].isalpha():
            raise SettingsError(f"IMPEXTECH_APP_DB_ROLE {role!r} is not a plain role name")
        limit_raw = _get(env, "IMPEXTECH_AUTH_RATE_LIMIT")
        try:
            count, _, seconds = limit_raw.partition("/")
            rate = (int(count), int(seconds))
            if rate[0] < 1 or rate[1] < 1:
                raise ValueError
        except ValueError:
            raise SettingsError(
                f"IMPEXTECH_AUTH_RATE_LIMIT must look like 10/900, not {limit_raw!r}"
            ) from None
        log_format = _get(env, "IMPEXTECH_LOG_FORMAT")
        if log_format not in {"auto", "json", "console"}:
            raise SettingsError("IMPEXTECH_LOG_FORMAT must be auto, json or console")
        log_level = _get(env, "IMPEXTECH_LOG_LEVEL").lower()
        if log_level not in {"debug", "info", "warning", "error"}:
            raise SettingsError("IMPEXTECH_LOG_LEVEL must be debug, info, warning or error")
        hash_concurrency = _int(env, "IMPEXTECH_HASH_CONCURRENCY", 0, 256) or (os.cpu_count() or 1)
        return cls(
            database_url=_get(env, "DATABASE_URL") or None,
            app_database_url=_get(env, "IMPEXTECH_APP_DATABASE_URL") or None,
            app_db_role=role,
            app_db_password=_get(env, "IMPEXTECH_APP_DB_PASSWORD") or None,
            data_dir=data_dir,
            host=_get(env, "IMPEXTECH_HOST"),
            port=_int(env, "IMPEXTECH_PORT", 0, 65535),
            secret_key=_secret(_get(env, "IMPEXTECH_SECRET_KEY"), data_dir),
            access_token_seconds=_int(env, "IMPEXTECH_ACCESS_TOKEN_SECONDS", 1, 900),
            refresh_token_days=_int(env, "IMPEXTECH_REFRESH_TOKEN_DAYS", 1, 365),
            auth_rate_limit=rate,
            hash_concurrency=hash_concurrency,
            cors_origins=tuple(
                o.strip() for o in _get(env, "IMPEXTECH_CORS_ORIGINS").split(",") if o.strip()
            ),
            max_body_bytes=_int(env, "IMPEXTECH_MAX_BODY_BYTES", 1024, 1 << 30),
            base_domains=tuple(
                d.strip().lower()
                for d in _get(env, "IMPEXTECH_BASE_DOMAINS").split(",")
                if d.strip()
            ),
            db_pool_size=_int(env, "IMPEXTECH_DB_POOL_SIZE", 1, 200),
            worker_queues=_queues(_get(env, "IMPEXTECH_WORKER_QUEUES")),
            job_lease_seconds=_int(env, "IMPEXTECH_JOB_LEASE_SECONDS", 2, 3600),
            worker_drain_seconds=_int(env, "IMPEXTECH_WORKER_DRAIN_SECONDS", 0, 3600),
            erp_url=_erp_url(_get(env, "IMPEXTECH_ERP_URL")),
            erp_timeout=_float(env, "IMPEXTECH_ERP_TIMEOUT", 0.1, 25.0),
            erp_breaker_failures=_int(env, "IMPEXTECH_ERP_BREAKER_FAILURES", 1, 1000),
            erp_breaker_cool_down=_float(env, "IMPEXTECH_ERP_BREAKER_COOL_DOWN", 0.1, 3600.0),
            log_format=log_format,
            log_level=log_level,
        )


def _float(env: dict[str, str], name: str, low: float, high: float) -> float:
    raw = _get(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not low <= value <= high:  # also refuses NaN
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {raw}")
    return value


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


def _queues(raw: str) -> tuple[tuple[str, int], ...]:
    queues: list[tuple[str, int]] = []
    for part in raw.split(","):
        name, _, slots = part.strip().partition(":")
        if not name.isidentifier() or not slots.isdigit() or not 1 <= int(slots) <= 256:
            raise SettingsError(
                f"IMPEXTECH_WORKER_QUEUES must look like urgent:4,bulk:2, not {raw!r}"
            )
        if any(name == seen for seen, _ in queues):
            raise SettingsError(f"IMPEXTECH_WORKER_QUEUES names {name!r} twice")
        queues.append((name, int(slots)))
    return tuple(queues)


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
