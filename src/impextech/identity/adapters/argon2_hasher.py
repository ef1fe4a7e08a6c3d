"""argon2id at OWASP's parameters, hashed in worker threads under a concurrency bound.

argon2-cffi releases the GIL while hashing, so threads give real parallelism; the bound keeps a
login flood from queueing hundreds of 19 MiB hashes at once.
"""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


def owasp_argon2() -> _Argon2:
    return _Argon2(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_KIB,
        parallelism=OWASP_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


class Argon2PasswordHasher:
    def __init__(self, max_concurrent: int) -> None:
        self._argon = owasp_argon2()
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        # A real hash of a random secret, so a login for an unknown email costs one verify.
        self._decoy = self._argon.hash("decoy-password-for-unknown-accounts")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._argon.hash, password, limiter=self._limiter)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, password_hash: str, password: str) -> bool:
        return await anyio.to_thread.run_sync(
            self._verify, password_hash, password, limiter=self._limiter
        )

    async def burn(self, password: str) -> None:
        await self.verify(self._decoy, password)
