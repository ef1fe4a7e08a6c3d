"""Profile and user administration use cases; an admin acts only inside their own tenant."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from impextech.identity.domain.model import User, UserStatus
from impextech.identity.service.ports import IdentityUnitOfWorkFactory, UserPage
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import Conflict, Forbidden, NotFound
from impextech.kernel.domain.principal import Principal, Role


class UserNotFound(NotFound):
    code = "user-not-found"
    title = "No such user"


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("only a marketplace admin may do this")


class UserService:
    def __init__(self, uow: IdentityUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def me(self, principal: Principal) -> User:
        return await self.get(principal, principal.user_id)

    async def get(self, principal: Principal, user_id: UUID) -> User:
        # Another user's id answers exactly like a missing one: no existence oracle.
        if user_id != principal.user_id and not principal.is_admin:
            raise UserNotFound()
        async with self._uow(principal.tenant_id) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def update_me(self, principal: Principal, *, display_name: str | None) -> User:
        async with self._uow(principal.tenant_id) as uow:
            user = await uow.users.get(principal.user_id)
            if user is None:
                raise UserNotFound()
            if display_name is not None and display_name != user.display_name:
                user = replace(user, display_name=display_name, updated_at=self._clock.now())
                await uow.users.update(user)
                await uow.commit()
        return user

    async def list(
        self,
        principal: Principal,
        *,
        role: Role | None,
        status: UserStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> UserPage:
        _require_admin(principal)
        async with self._uow(principal.tenant_id) as uow:
            return await uow.users.list(role=role, status=status, after=after, limit=limit)

    async def change_role(self, principal: Principal, user_id: UUID, role: Role) -> User:
        _require_admin(principal)
        if user_id == principal.user_id:
            raise Conflict("an admin cannot change their own role")
        async with self._uow(principal.tenant_id) as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFound()
            if user.role is not role:
                user = replace(user, role=role, updated_at=self._clock.now())
                await uow.users.update(user)
                await uow.commit()
        return user

    async def deactivate(self, principal: Principal, user_id: UUID) -> User:
        _require_admin(principal)
        if user_id == principal.user_id:
            raise Conflict("an admin cannot deactivate their own account")
        async with self._uow(principal.tenant_id) as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFound()
            now = self._clock.now()
            if user.status is not UserStatus.DEACTIVATED:
                user = replace(user, status=UserStatus.DEACTIVATED, updated_at=now)
                await uow.users.update(user)
            await uow.sessions.revoke_user_sessions(user.id, now, "deactivated")
            await uow.commit()
        return user
