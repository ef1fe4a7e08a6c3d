"""Settings sections: each context declares its own environment variables in one class.

A section is a frozen dataclass with a ``SETTINGS`` table (every variable, its default and its
help, which the README documents) and a ``from_env`` that reads it through ``Env``, whose readers
check types and ranges and fail with one clear line. The platform builds every section once, into
one typed settings object (``impextech.platform.settings.Settings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, Self

from impextech.kernel.domain.errors import ImpextechError


class SettingsError(ImpextechError):
    code = "bad-setting"
    title = "A setting is not valid"


@dataclass(frozen=True, slots=True)
class Setting:
    env: str
    default: str
    help: str


class SettingsSection(Protocol):
    """What a context's settings class offers (a frozen dataclass in practice)."""

    SETTINGS: ClassVar[tuple[Setting, ...]]

    @classmethod
    def from_env(cls, env: Env) -> Self: ...


class Env:
    """The process environment seen through a section's table of defaults."""

    def __init__(self, environ: Mapping[str, str], table: tuple[Setting, ...]) -> None:
        self._environ = environ
        self._defaults = {s.env: s.default for s in table}

    def is_set(self, name: str) -> bool:
        """Whether the environment names ``name`` at all (for settings that were retired)."""
        return name in self._environ

    def raw(self, name: str) -> str:
        return self._environ.get(name, self._defaults[name]).strip()

    def text(self, name: str) -> str | None:
        """The value, or None when it is empty."""
        return self.raw(name) or None

    def integer(self, name: str, low: int, high: int) -> int:
        raw = self.raw(name)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
        return value

    def seconds(self, name: str, low: float, high: float) -> float:
        raw = self.raw(name)
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
        if not low <= value <= high:  # also refuses NaN
            raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {raw}")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name).lower()
        if value not in choices:
            *first, last = choices
            raise SettingsError(f"{name} must be {', '.join(first)} or {last}, not {value!r}")
        return value

    def words(self, name: str, *, lower: bool = False) -> tuple[str, ...]:
        """A comma-separated list, blanks dropped."""
        parts = (p.strip() for p in self.raw(name).split(","))
        return tuple(p.lower() if lower else p for p in parts if p)
