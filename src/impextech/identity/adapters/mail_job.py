"""E-mail as a durable job: queued in the transaction that decides to send it, sent by a worker.

The job carries no address and no link: only which message to write (``template``), what it is
about (``reset_id``) and the reset's seed, from which only a holder of the secret key can
derive the link. The worker reads the recipient when it runs, and sends nothing for a reset
that was used or expired meanwhile. A send that fails is retried with the kind's backoff.
"""

from __future__ import annotations

from uuid import UUID

from impextech.identity.service.password_reset import PasswordResetMail
from impextech.jobs.api import (
    Backoff,
    Handler,
    JobContext,
    JobKind,
    JobScheduler,
    JsonObject,
    PermanentJobError,
)

SEND_MAIL = JobKind(
    "identity.send_mail",
    queue="urgent",  # someone is waiting for this e-mail
    priority=5,
    max_attempts=8,
    timeout_seconds=60,
    backoff=Backoff(base_seconds=5, cap_seconds=600),
)
PASSWORD_RESET_TEMPLATE = "password-reset"  # noqa: S105 (a template name)


class JobMailQueue:
    def __init__(self, scheduler: JobScheduler) -> None:
        self._scheduler = scheduler

    async def password_reset(self, reset_id: UUID, seed: str) -> None:
        await self._scheduler.enqueue(
            SEND_MAIL,
            {"template": PASSWORD_RESET_TEMPLATE, "reset_id": str(reset_id), "seed": seed},
            dedup_key=f"password-reset:{reset_id}",
        )


def send_mail_handler(mail: PasswordResetMail) -> Handler:
    async def send(ctx: JobContext) -> JsonObject | None:
        template = ctx.payload.get("template")
        if template != PASSWORD_RESET_TEMPLATE:
            raise PermanentJobError(f"unknown mail template {template!r}")
        try:
            reset_id = UUID(str(ctx.payload.get("reset_id")))
            sent = await mail.send(ctx.tenant_id, reset_id, str(ctx.payload.get("seed")))
        except ValueError as exc:
            # Nothing in such a payload will ever work; the message names no secret.
            raise PermanentJobError(f"unusable password-reset mail job: {exc}") from None
        return {"template": template, "sent": sent}

    return send
