"""Profile and user administration use cases; an admin acts only inside their own tenant.

Every write names only the column it changes, so a request that read a user earlier can never
carry a stale role, status or password back. Admin actions lock the acting admin's row and the
target's (in id order) and check both again under the lock: the role an access token was
authenticated with may have been taken away a moment ago, and two admins demoting each other
at once must not leave the marketplace with none.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from impextech.identity.domain.errors import AdminRoleLost, LastActiveAdmin, UserNotFound
from impextech.identity.domain.model import User, UserStatus
from impextech.identity.service.ports import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    UserPage,
)
from impextech.kernel.domain.clock import Clock
from impextech.kernel.domain.errors import Conflict, Forbidden
from impextech.kernel.domain.principal import Principal, Role

__all__ = ["UserNotFound", "UserService"]


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("only a marketplace admin may do this")


def _is_active_admin(user: User | None) -> bool:
    return user is not None and user.is_active and user.role is Role.ADMIN


async def _lock_actor_and_target(
    uow: IdentityUnitOfWork, principal: Principal, user_id: UUID, *, removes_admin: bool
) -> User:
    """Lock both rows, then check (in this order) that the target exists, that the change
    leaves an active admin, and that the actor still is one. Answers the target as locked."""
    locked = await uow.users.lock([principal.user_id, user_id])
    target = locked.get(user_id)
    if target is None:
        raise UserNotFound()
    if removes_admin and _is_active_admin(target) and await uow.users.count_active_admins() <= 1:
        raise LastActiveAdmin()
    if not _is_active_admin(locked.get(principal.user_id)):
        raise AdminRoleLost()
    return target


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
            if display_name is None or display_name == user.display_name:
                return user
            updated = await uow.users.set_display_name(user.id, display_name, self._clock.now())
            if updated is None:
                raise UserNotFound()
            await uow.commit()
        return updated

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
            user = await _lock_actor_and_target(
                uow, principal, user_id, removes_admin=role is not Role.ADMIN
            )
            if user.role is role:
                return user
            updated = await uow.users.set_role(user_id, role, self._clock.now())
            assert updated is not None  # the row is locked: it cannot have gone
            await uow.commit()
        return updated

    async def deactivate(self, principal: Principal, user_id: UUID) -> User:
        _require_admin(principal)
        if user_id == principal.user_id:
            raise Conflict("an admin cannot deactivate their own account")
        async with self._uow(principal.tenant_id) as uow:
            user = await _lock_actor_and_target(uow, principal, user_id, removes_admin=True)
            now = self._clock.now()
            if user.status is not UserStatus.DEACTIVATED:
                changed = await uow.users.set_status(user_id, UserStatus.DEACTIVATED, now)
                assert changed is not None  # the row is locked: it cannot have gone
                user = changed
            await uow.sessions.revoke_user_sessions(user.id, now, "deactivated")
            await uow.commit()
        return user
