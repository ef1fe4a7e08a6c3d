"""Identity's answer to "who is this account now?" over PostgreSQL, for tests that build a
catalog import by hand (the platform passes identity's facade instead)."""

from __future__ import annotations

from impextech.identity.adapters.sql import SqlIdentityUnitOfWork
from impextech.identity.service.directory import UserDirectory
from impextech.kernel.db import Database


def user_directory(database: Database) -> UserDirectory:
    return UserDirectory(lambda tenant_id: SqlIdentityUnitOfWork(database, tenant_id))
