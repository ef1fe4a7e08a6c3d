"""The user directory over PostgreSQL, for contexts that ask about an account after the fact."""

from __future__ import annotations

from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.service.directory import UserDirectory
from impextech.kernel.db import Database


def user_directory(database: Database) -> UserDirectory:
    return UserDirectory(lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id))
