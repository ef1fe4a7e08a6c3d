"""Attempt counters in PostgreSQL, shared by every web process.

A ``Budget`` key's window opens at its first counted attempt and lasts its length; the next
attempt after that opens a new one. Unlike windows aligned to the clock, a burst cannot straddle
a boundary to get twice the limit. A ``Backoff`` key remembers when it was last hit and makes
each attempt past its free ones wait twice as long as the one before.

Time is the caller's (the injected Clock), so tests move it instead of sleeping; the web hosts'
clocks must agree to within a second or so (NTP), which any host issuing tokens needs anyway.
Keys are stored as HMAC digests under a key derived from the server secret: a plain digest of
an address or an e-mail is reversed by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from impextech.identity.service.ports import Attempt, Backoff, Budget, Hold
from impextech.kernel.db import Connection

# Rows untouched for this long are pruned, so no window or memory may be longer.
RETENTION = timedelta(days=1)

_LOCK = "SELECT hits, window_start FROM rate_limit_counters WHERE key = %s FOR UPDATE"
_OPEN = (
    "INSERT INTO rate_limit_counters (key, window_start, hits) VALUES (%s, %s, 1)"
    " ON CONFLICT (key) DO NOTHING"
)
_SET = "UPDATE rate_limit_counters SET hits = %s, window_start = %s WHERE key = %s"
# One statement: the row goes when its last hit is given back (hits stays >= 1).
_GIVE_BACK_BUDGET = """
WITH gone AS (
    DELETE FROM rate_limit_counters
    WHERE key = %(key)s AND hits = 1
      AND window_start <= %(at)s AND window_start > %(at)s - make_interval(secs => %(window)s)
    RETURNING 1
)
UPDATE rate_limit_counters SET hits = hits - 1
WHERE key = %(key)s AND hits > 1
  AND window_start <= %(at)s AND window_start > %(at)s - make_interval(secs => %(window)s)
"""
# A backoff row's window_start is its latest hit: at or after ours while ours still counts.
_GIVE_BACK_BACKOFF = """
WITH gone AS (
    DELETE FROM rate_limit_counters
    WHERE key = %(key)s AND hits = 1 AND window_start >= %(at)s
    RETURNING 1
)
UPDATE rate_limit_counters SET hits = hits - 1
WHERE key = %(key)s AND hits > 1 AND window_start >= %(at)s
"""
_PRUNE = "DELETE FROM rate_limit_counters WHERE window_start < %s"
_FOLD = "SELECT lower(%s) AS folded"


# Only for units of work built without the platform's key (see SqlIdentityUnitOfWork).
PROCESS_ATTEMPT_KEY = secrets.token_bytes(32)


def attempt_key(secret: bytes) -> bytes:
    """The counter's digest key: derived from the server secret, never the secret itself."""
    return hmac.new(secret, b"impextech/rate-limit-keys/v1", hashlib.sha256).digest()


class _Row(NamedTuple):
    hits: int
    window_start: datetime


class _Refused(Exception):
    """Unwinds the savepoint, so a refused call counts nothing."""


def _seconds(attempt: Attempt) -> int:
    return attempt.window_seconds if isinstance(attempt, Budget) else attempt.memory_seconds


def backoff_delay(attempt: Backoff, failures: int) -> int:
    """Seconds the next attempt must wait after the previous one, given earlier failures."""
    if failures < attempt.free:
        return 0
    # Capping the exponent keeps the number small; the cap on seconds does the rest.
    doubling: int = 2 ** min(failures - attempt.free, 62)
    return min(attempt.max_seconds, attempt.base_seconds * doubling)


def judge(attempt: Attempt, row: _Row | None, now: datetime) -> tuple[float, _Row]:
    """The seconds to wait (0: allowed) and the row as it is after counting this attempt."""
    if isinstance(attempt, Budget):
        window = timedelta(seconds=attempt.window_seconds)
        if row is None or row.window_start <= now - window:
            return 0, _Row(1, now)
        if row.hits >= attempt.limit:
            return (row.window_start + window - now).total_seconds(), row
        return 0, _Row(row.hits + 1, row.window_start)
    if row is None or row.window_start <= now - timedelta(seconds=attempt.memory_seconds):
        return 0, _Row(1, now)
    delay = backoff_delay(attempt, row.hits)
    # No delay owed means no wait, even when a concurrent request that read the clock a moment
    # later counted first (its time is then ahead of ours).
    if delay > 0 and now < row.window_start + timedelta(seconds=delay):
        return (row.window_start + timedelta(seconds=delay) - now).total_seconds(), row
    return 0, _Row(row.hits + 1, now)


class SqlAttemptCounter:
    """Counts attempts on the unit of work's connection (the table is global, not under RLS)."""

    def __init__(self, conn: Connection, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the attempt counter needs a key of at least 16 bytes")
        self._conn = conn
        self._key = key

    def digest(self, key: str) -> str:
        return hmac.new(self._key, key.encode(), hashlib.sha256).hexdigest()

    async def fold(self, email: str) -> str:
        # The account look-up compares lower(email) in SQL; asking the same function keeps
        # "which spellings are one account" identical on both sides, whatever the locale.
        cur = await self._conn.execute(_FOLD, (email,))
        row = await cur.fetchone()
        assert row is not None
        return str(row.folded)

    async def take(self, attempts: Sequence[Attempt], now: datetime) -> int | None:
        for attempt in attempts:
            if _seconds(attempt) > RETENTION.total_seconds():
                raise ValueError(f"{attempt.key}: windows longer than {RETENTION} are pruned")
        # Lock rows in one global order, so two requests sharing keys cannot deadlock.
        ordered = sorted(((self.digest(a.key), a) for a in attempts), key=lambda pair: pair[0])
        waits: list[int] = []
        try:
            async with self._conn.transaction():
                for digest, attempt in ordered:
                    wait = await self._count(digest, attempt, now)
                    if wait > 0:
                        limit = _seconds(attempt)
                        waits.append(min(limit, max(1, math.ceil(wait))))
                if waits:
                    raise _Refused
        except _Refused:
            return max(waits)
        if random.random() < 0.01:  # keep the table small without a scheduler
            await self._conn.execute(_PRUNE, (now - RETENTION,))
        return None

    async def _count(self, digest: str, attempt: Attempt, now: datetime) -> float:
        row = await self._lock(digest)
        if row is None:
            opened = await self._conn.execute(_OPEN, (digest, now))
            if opened.rowcount == 1:
                return 0  # the first attempt of a fresh key is always allowed
            row = await self._lock(digest)  # another request created it meanwhile
        wait, after = judge(attempt, row, now)
        if wait <= 0:
            await self._conn.execute(_SET, (after.hits, after.window_start, digest))
        return wait

    async def _lock(self, digest: str) -> _Row | None:
        cur = await self._conn.execute(_LOCK, (digest,))
        row: Any = await cur.fetchone()
        return None if row is None else _Row(row.hits, row.window_start)

    async def give_back(self, hold: Hold) -> None:
        # The same global order as ``take``: a give-back and a take sharing keys (two sign-ins
        # to one account at once) would otherwise each hold the row the other waits for.
        ordered = sorted(((self.digest(a.key), a) for a in hold.attempts), key=lambda p: p[0])
        for digest, attempt in ordered:
            params: dict[str, Any] = {"key": digest, "at": hold.at}
            if isinstance(attempt, Budget):
                params["window"] = attempt.window_seconds
                await self._conn.execute(_GIVE_BACK_BUDGET, params)
            else:
                await self._conn.execute(_GIVE_BACK_BACKOFF, params)
