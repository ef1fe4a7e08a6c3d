"""Forgotten passwords: a reset link by e-mail, then a new password set with that link.

Asking for a link answers the same whether or not the address has an account; the link is
single use, lives ``RESET_LIFETIME``, and setting the password with it ends every session of
the account. The e-mail is a job queued in the asking transaction: it exists exactly when the
token does, and no outside call runs on the request path.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from impextech.identity.domain.errors import InvalidResetToken
from impextech.identity.domain.model import normalise_email
from impextech.identity.domain.password_reset import (
    RESET_LIFETIME,
    SEED_BYTES,
    decode_seed,
    encode_seed,
    hash_reset_token,
    reset_token,
    tenant_of_reset_token,
)
from impextech.identity.domain.passwords import check_password
from impextech.identity.service.ports import (
    Budget,
    Mailer,
    MailMessage,
    PasswordHasher,
    PasswordResetUnitOfWorkFactory,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import RateLimited


@dataclass(frozen=True, slots=True)
class ResetPolicy:
    lifetime: timedelta = RESET_LIFETIME
    # Each request sends an e-mail: a few per hour per account, more per address (an office).
    per_address: tuple[int, int] = (20, 3600)
    per_account: tuple[int, int] = (5, 3600)


class PasswordResetService:
    def __init__(
        self,
        uow: PasswordResetUnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        key: bytes,
        policy: ResetPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._key = key
        self._policy = policy or ResetPolicy()

    async def request(self, tenant_id: UUID, email: str, address: str) -> None:
        """Queue a reset e-mail if the address has an active account; silent either way."""
        email = normalise_email(email)
        (addr_limit, addr_window), (acct_limit, acct_window) = (
            self._policy.per_address,
            self._policy.per_account,
        )
        async with self._uow(tenant_id) as uow:
            account = await uow.attempts.fold(email)
            wait = await uow.attempts.take(
                [
                    Budget(f"reset:address:{address}", addr_limit, addr_window),
                    Budget(f"reset:account:{tenant_id}:{account}", acct_limit, acct_window),
                ],
                self._clock.now(),
            )
            if wait is not None:
                raise RateLimited(wait)  # a refusal counts nothing, so nothing to commit
            user = await uow.users.get_by_email(email)
            if user is not None and user.is_active:
                now = self._clock.now()
                seed = secrets.token_bytes(SEED_BYTES)
                token = reset_token(self._key, tenant_id, seed)
                reset_id = uuid.uuid4()
                await uow.resets.add(
                    reset_id, user.id, hash_reset_token(token), now, now + self._policy.lifetime
                )
                await uow.mail.password_reset(reset_id, encode_seed(seed))
            await uow.commit()

    async def confirm(self, token: str, new_password: str) -> UUID:
        """Set the password with a reset token; answers the tenant it acted in."""
        tenant_id = tenant_of_reset_token(token)
        token_hash = hash_reset_token(token)
        async with self._uow(tenant_id) as uow:
            record = await uow.resets.find(token_hash)
            user = await uow.users.get(record.user_id) if record is not None else None
        if record is None or user is None or not user.is_active:
            raise InvalidResetToken()
        if not record.usable_at(self._clock.now()):
            raise InvalidResetToken()
        check_password(new_password, email=user.email, display_name=user.display_name)
        new_hash = await self._hasher.hash(new_password)
        async with self._uow(tenant_id) as uow:
            now = self._clock.now()
            # Using the token is the gate: of two concurrent confirmations one gets here.
            if not await uow.resets.use(record.id, now):
                raise InvalidResetToken()
            current = (await uow.users.lock([user.id])).get(user.id)
            if current is None or not current.is_active:
                raise InvalidResetToken()
            await uow.users.replace_password_hash(user.id, current.password_hash, new_hash, now)
            await uow.resets.retire_user(user.id, now)
            await uow.sessions.revoke_user_sessions(user.id, now, "password-reset")
            await uow.commit()
        return tenant_id


class PasswordResetMail:
    """The mail job's use case: write the e-mail for a reset that is still usable, and send it."""

    def __init__(
        self,
        uow: PasswordResetUnitOfWorkFactory,
        mailer: Mailer,
        clock: Clock,
        key: bytes,
        link_base: str,
    ) -> None:
        self._uow = uow
        self._mailer = mailer
        self._clock = clock
        self._key = key
        self._link_base = link_base

    async def send(self, tenant_id: UUID, reset_id: UUID, seed_text: str) -> bool:
        """False (and nothing sent) when the token was used or expired before the job ran."""
        seed = decode_seed(seed_text)
        async with self._uow(tenant_id) as uow:
            record = await uow.resets.get(reset_id)
            user = await uow.users.get(record.user_id) if record is not None else None
        if record is None or user is None or not record.usable_at(self._clock.now()):
            return False
        token = reset_token(self._key, tenant_id, seed)
        if hash_reset_token(token) != record.token_hash:
            raise ValueError("the seed does not match the stored token (another secret key?)")
        minutes = int((record.expires_at - record.created_at).total_seconds() // 60)
        link = f"{self._link_base}{'&' if '?' in self._link_base else '?'}token={token}"
        await self._mailer.send(
            MailMessage(
                to=user.email,
                subject="Reset your password",
                text=(
                    f"Hello {user.display_name},\n\n"
                    "Someone asked to reset the password of your account. If it was you, open"
                    f" this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
                    "The link works once. If you did not ask, ignore this message: your"
                    " password stays as it is.\n"
                ),
            )
        )
        return True
