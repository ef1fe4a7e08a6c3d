"""Session upkeep: deleting what can never authenticate anyone again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from impextech.identity.service.ports import IdentityUnitOfWorkFactory
from impextech.kernel.domain.clock import Clock


@dataclass(frozen=True, slots=True)
class Purged:
    refresh_tokens: int
    sessions: int


class SessionUpkeep:
    """Purges, per marketplace, refresh tokens expired and sessions ended ``retention`` ago.

    The retention keeps recent history for investigating a session; refresh tokens are kept
    until they expire even once used, so presenting one again is still caught as reuse.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        clock: Clock,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._retention = retention

    async def purge(self, tenant_id: UUID) -> Purged:
        async with self._uow(tenant_id) as uow:
            tokens, sessions = await uow.sessions.purge_spent(self._clock.now() - self._retention)
            await uow.commit()
        return Purged(refresh_tokens=tokens, sessions=sessions)
