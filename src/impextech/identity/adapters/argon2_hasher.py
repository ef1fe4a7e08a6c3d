"""argon2id at OWASP's parameters, hashed in worker threads under a concurrency bound.

argon2-cffi releases the GIL while hashing, so threads give real parallelism. The bound keeps a
login flood from running hundreds of 19 MiB hashes at once, and the hashing threads run at a
lower scheduling priority (Linux lets a thread renice itself), so during a flood the event loop
still gets the CPU it needs to answer everything else promptly while hashing takes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1
HASHING_NICENESS = 10


def owasp_argon2() -> _Argon2:
    return _Argon2(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_KIB,
        parallelism=OWASP_PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def _lower_thread_priority() -> None:
    if sys.platform == "linux":
        # On Linux, PRIO_PROCESS with a thread id renices just that thread.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class Argon2PasswordHasher:
    def __init__(self, max_concurrent: int) -> None:
        self._argon = owasp_argon2()
        # Submissions beyond max_concurrent wait in the executor's queue.
        self.thread_name_prefix = f"argon2-{id(self):x}"
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrent,
            thread_name_prefix=self.thread_name_prefix,
            initializer=_lower_thread_priority,
        )
        # A real hash of a random secret, so a login for an unknown email costs one verify.
        self._decoy = self._argon.hash("decoy-password-for-unknown-accounts")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._argon.hash, password
        )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._verify, password_hash, password
        )

    async def burn(self, password: str) -> None:
        await self.verify(self._decoy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        # Parses the hash's parameter string only: no hashing, fine on the event loop.
        try:
            return self._argon.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False  # not ours to rewrite; verify already refuses it

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
