"""Attempt counters in PostgreSQL, shared by every web process.

Each key's window opens at its first attempt and lasts ``window_seconds``; the next attempt after
that opens a new one. Unlike windows aligned to the clock, a burst cannot straddle a boundary to
get twice the limit. Time is the database's, so every web process agrees on it.
"""

from __future__ import annotations

import hashlib
import math
import random

from impextech.kernel.db import Database

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


class PostgresRateLimiter:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        # Keys hold addresses and emails; store a digest, not the personal data.
        digest = hashlib.sha256(key.encode()).hexdigest()
        async with self._db.transaction(None) as conn:
            cur = await conn.execute(_HIT, {"key": digest, "window": window_seconds})
            row = await cur.fetchone()
            assert row is not None
            if random.random() < 0.01:  # keep the table small without a scheduler
                await conn.execute(_PRUNE)
        if row.hits > limit:
            return min(window_seconds, max(1, math.ceil(float(row.remaining))))
        return None
