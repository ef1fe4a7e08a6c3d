"""Fixed-window attempt counters in PostgreSQL, shared by every web process."""

from __future__ import annotations

import hashlib
import math
import random
import time
from datetime import UTC, datetime

from impextech.kernel.db import Database

_HIT = (
    "INSERT INTO rate_limit_counters (key, window_start, hits) VALUES (%s, %s, 1)"
    " ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1"
    " RETURNING hits"
)
_PRUNE = "DELETE FROM rate_limit_counters WHERE window_start < now() - interval '1 day'"


class PostgresRateLimiter:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        now = time.time()
        start = math.floor(now / window_seconds) * window_seconds
        # Keys hold addresses and emails; store a digest, not the personal data.
        digest = hashlib.sha256(key.encode()).hexdigest()
        async with self._db.transaction(None) as conn:
            cur = await conn.execute(_HIT, (digest, datetime.fromtimestamp(start, UTC)))
            row = await cur.fetchone()
            assert row is not None
            hits: int = row.hits
            if random.random() < 0.01:  # keep the table small without a scheduler
                await conn.execute(_PRUNE)
        if hits > limit:
            return max(1, math.ceil(start + window_seconds - now))
        return None
