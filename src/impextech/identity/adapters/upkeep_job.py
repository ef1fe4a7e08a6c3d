"""Session upkeep as a periodic job: every night, each marketplace forgets spent sessions."""

from __future__ import annotations

from impextech.identity.service.sessions import SessionUpkeep
from impextech.jobs.api import Handler, JobContext, JobKind, JsonObject

SESSION_PURGE = JobKind("identity.session_purge", queue="bulk", max_attempts=3, timeout_seconds=300)
SESSION_PURGE_CRON = "23 3 * * *"


def session_purge_handler(upkeep: SessionUpkeep) -> Handler:
    async def purge(ctx: JobContext) -> JsonObject:
        purged = await upkeep.purge(ctx.tenant_id)
        return {"refresh_tokens": purged.refresh_tokens, "sessions": purged.sessions}

    return purge
