"""Attempt counters in PostgreSQL, shared by every web process.

Each key's window opens at its first attempt and lasts ``window_seconds``; the next attempt after
that opens a new one. Unlike windows aligned to the clock, a burst cannot straddle a boundary to
get twice the limit. Time is the database's, so every web process agrees on it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

from impextech.identity.service.ports import Attempt
from impextech.kernel.db import Connection

_HIT = """
INSERT INTO rate_limit_counters AS c (key, window_start, hits) VALUES (%(key)s, now(), 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN c.window_start <= now() - make_interval(secs => %(window)s)
                THEN 1 ELSE c.hits + 1 END,
    window_start = CASE WHEN c.window_start <= now() - make_interval(secs => %(window)s)
                        THEN now() ELSE c.window_start END
RETURNING hits,
    extract(epoch FROM c.window_start + make_interval(secs => %(window)s) - now()) AS remaining
"""
_PRUNE = "DELETE FROM rate_limit_counters WHERE window_start < now() - interval '1 day'"


class SqlAttemptCounter:
    """Counts attempts on the unit of work's connection (the table is global, not under RLS)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def hit_all(self, attempts: Sequence[Attempt]) -> int | None:
        waits: list[int] = []
        for attempt in attempts:
            # Keys hold addresses and emails; store a digest, not the personal data.
            digest = hashlib.sha256(attempt.key.encode()).hexdigest()
            cur = await self._conn.execute(_HIT, {"key": digest, "window": attempt.window_seconds})
            row = await cur.fetchone()
            assert row is not None
            if row.hits > attempt.limit:
                remaining = math.ceil(float(row.remaining))
                waits.append(min(attempt.window_seconds, max(1, remaining)))
        if random.random() < 0.01:  # keep the table small without a scheduler
            await self._conn.execute(_PRUNE)
        return max(waits, default=None)
