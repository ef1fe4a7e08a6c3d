"""Account safety: an absolute end for every session, and the upkeep that purges spent ones.

``auth_sessions.expires_at`` is fixed at sign-in; refreshing never moves it, so a stolen
refresh token cannot keep a session alive forever. Sessions that existed before this revision
get 30 days from their creation (the default policy).

The periodic purge deletes refresh tokens long expired and sessions long ended, so the app
role now needs DELETE on both tables; RLS still confines it to the tenant it acts for. The
indexes serve the purge and the last-active-admin check.

Revision ID: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _app_role() -> str:
    role: str = op.get_context().config.attributes["app_role"]  # type: ignore[union-attr]
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        """
        ALTER TABLE auth_sessions ADD COLUMN expires_at timestamptz;
        UPDATE auth_sessions SET expires_at = created_at + interval '30 days';
        ALTER TABLE auth_sessions ALTER COLUMN expires_at SET NOT NULL;
        ALTER TABLE auth_sessions ADD CONSTRAINT auth_sessions_expiry_after_creation
            CHECK (expires_at > created_at);

        CREATE INDEX auth_sessions_expiry ON auth_sessions (tenant_id, expires_at);
        CREATE INDEX auth_sessions_revoked ON auth_sessions (tenant_id, revoked_at)
            WHERE revoked_at IS NOT NULL;
        CREATE INDEX refresh_tokens_expiry ON refresh_tokens (tenant_id, expires_at);
        CREATE INDEX users_active_admins ON users (tenant_id)
            WHERE role = 'admin' AND status = 'active';
        """
    )
    op.execute(f"GRANT DELETE ON auth_sessions, refresh_tokens TO {app}")


def downgrade() -> None:
    app = _app_role()
    op.execute(f"REVOKE DELETE ON auth_sessions, refresh_tokens FROM {app}")
    op.execute(
        """
        DROP INDEX users_active_admins;
        DROP INDEX refresh_tokens_expiry;
        DROP INDEX auth_sessions_revoked;
        DROP INDEX auth_sessions_expiry;
        ALTER TABLE auth_sessions DROP COLUMN expires_at;
        """
    )
