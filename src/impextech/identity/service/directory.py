"""Questions other contexts ask about an account long after its request (a job, a retry).

A token says who someone was when it was issued; work that runs later asks here who they are now.
"""

from __future__ import annotations

from uuid import UUID

from impextech.identity.domain.model import UserStatus
from impextech.identity.service.ports import IdentityUnitOfWorkFactory
from impextech.kernel.domain.principal import Role


class UserDirectory:
    def __init__(self, uow: IdentityUnitOfWorkFactory) -> None:
        self._uow = uow

    async def active_role(self, tenant_id: UUID, user_id: UUID) -> Role | None:
        """The user's role now if their account is active in ``tenant_id``; None otherwise.

        An unknown user, a user of another tenant and a deactivated one all answer None.
        """
        async with self._uow(tenant_id) as uow:
            user = await uow.users.get(user_id)
        if user is None or user.status is not UserStatus.ACTIVE:
            return None
        return user.role
