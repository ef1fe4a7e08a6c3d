"""A clock that only moves when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, at: datetime = T0) -> None:
        self.current = at

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> datetime:
        self.current += by
        return self.current
