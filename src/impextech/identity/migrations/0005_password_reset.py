"""Password reset tokens: single use, short lived, only their SHA-256 kept.

Tenant-owned like the foundation's tables: tenant_id NOT NULL, a composite foreign key to the
user that includes the tenant, and row-level security enabled, forced and keyed on
app.tenant_id. The application may read, add and mark tokens used, never delete them.

Revision ID: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CURRENT_TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"


def _app_role() -> str:
    role: str = op.get_context().config.attributes["app_role"]  # type: ignore[union-attr]
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def upgrade() -> None:
    app = _app_role()
    op.execute(
        """
        CREATE TABLE password_reset_tokens (
            tenant_id uuid NOT NULL,
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL,
            token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
            used_at timestamptz,
            FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
        );
        CREATE INDEX password_reset_tokens_user ON password_reset_tokens (tenant_id, user_id)
            WHERE used_at IS NULL;
        ALTER TABLE password_reset_tokens ENABLE ROW LEVEL SECURITY;
        ALTER TABLE password_reset_tokens FORCE ROW LEVEL SECURITY;
        """
    )
    op.execute(
        "CREATE POLICY tenant_isolation ON password_reset_tokens"
        f" USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON password_reset_tokens TO {app}")


def downgrade() -> None:
    app = _app_role()
    op.execute(f"REVOKE ALL ON password_reset_tokens FROM {app}")
    op.execute("DROP TABLE password_reset_tokens")
