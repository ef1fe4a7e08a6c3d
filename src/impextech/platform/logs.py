"""Structured logs: JSON off a terminal, readable on one; request context on every line.

No format may carry a secret. Tracebacks are rendered without local variables (a frame of a
sign-in holds the password, a refresh holds the token), and values under keys that name
secrets are replaced before any renderer sees them, in case someone logs one by name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "[redacted]"
# Compared after lower-casing and dropping "-" and "_", so "Refresh-Token" matches too.
_SECRET_KEYS = frozenset(
    {
        "password",
        "currentpassword",
        "newpassword",
        "passwordhash",
        "token",
        "accesstoken",
        "refreshtoken",
        "resettoken",
        "authorization",
        "cookie",
        "secret",
        "secretkey",
        "apikey",
        "email",
    }
)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def _scrubbed(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_secret_key(k) else _scrubbed(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(v, depth + 1) for v in value]
    return value


def scrub_secrets(
    logger: object, name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Replace the values of secret-named keys, at any depth of the event."""
    for key in list(event):
        if _is_secret_key(key):
            event[key] = REDACTED
        elif isinstance(event[key], Mapping | list | tuple):
            event[key] = _scrubbed(event[key])
    return event


def console_renderer(colors: bool) -> structlog.dev.ConsoleRenderer:
    """Readable lines whose tracebacks show code and messages, never local variables."""
    return structlog.dev.ConsoleRenderer(
        colors=colors,
        # Chosen explicitly: the default shows locals (rich) or may pick better_exceptions.
        exception_formatter=structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        ),
    )


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        scrub_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else console_renderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        # Drop events below the level before any processor builds them.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if json_output else _identity,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours, without request id or tenant.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The job library narrates every job at info; our runtime logs each outcome with the
    # tenant and job ids, so keep only its warnings.
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, root.level))


def _identity(
    logger: object, name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event
