"""Foundation: tenants, users, sessions, refresh tokens, products, rate-limit counters.

Every tenant-owned table has tenant_id NOT NULL, composite foreign keys that include the
tenant, and a row-level-security policy (enabled and FORCED) keyed on the transaction-local
setting app.tenant_id. With no tenant set, no row is visible and none can be written.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_OWNED = ("users", "auth_sessions", "refresh_tokens", "products")

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
        CREATE TABLE tenants (
            id uuid PRIMARY KEY,
            slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            status text NOT NULL CHECK (status IN ('active', 'suspended')),
            created_at timestamptz NOT NULL
        );

        CREATE TABLE users (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid PRIMARY KEY,
            email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
            display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
            role text NOT NULL CHECK (role IN ('shopper', 'seller', 'admin')),
            status text NOT NULL CHECK (status IN ('active', 'deactivated')),
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (tenant_id, id)
        );
        CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
        CREATE INDEX users_tenant_created ON users (tenant_id, created_at, id);

        CREATE TABLE auth_sessions (
            tenant_id uuid NOT NULL,
            id uuid PRIMARY KEY,
            user_id uuid NOT NULL,
            created_at timestamptz NOT NULL,
            revoked_at timestamptz,
            revoked_reason text,
            UNIQUE (tenant_id, id),
            FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
        );
        CREATE INDEX auth_sessions_user ON auth_sessions (tenant_id, user_id)
            WHERE revoked_at IS NULL;

        CREATE TABLE refresh_tokens (
            tenant_id uuid NOT NULL,
            id uuid PRIMARY KEY,
            session_id uuid NOT NULL,
            user_id uuid NOT NULL,
            token_hash bytea NOT NULL UNIQUE,
            issued_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            FOREIGN KEY (tenant_id, session_id) REFERENCES auth_sessions (tenant_id, id),
            FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
        );
        CREATE INDEX refresh_tokens_session ON refresh_tokens (tenant_id, session_id);

        CREATE TABLE products (
            tenant_id uuid NOT NULL,
            id uuid PRIMARY KEY,
            seller_id uuid NOT NULL,
            sku text NOT NULL CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
            category text NOT NULL CHECK (length(category) BETWEEN 1 AND 80),
            price_amount bigint NOT NULL CHECK (price_amount >= 0),
            currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            stock integer NOT NULL CHECK (stock >= 0),
            status text NOT NULL CHECK (status IN ('active', 'archived')),
            version integer NOT NULL CHECK (version >= 1),
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            search tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', name), 'A')
                || setweight(to_tsvector('english', category), 'B')
                || setweight(to_tsvector('english', description), 'C')
            ) STORED,
            UNIQUE (tenant_id, id),
            FOREIGN KEY (tenant_id, seller_id) REFERENCES users (tenant_id, id)
        );
        CREATE UNIQUE INDEX products_tenant_sku ON products (tenant_id, sku);
        CREATE INDEX products_newest ON products (tenant_id, created_at DESC, id DESC)
            WHERE status = 'active';
        CREATE INDEX products_price ON products (tenant_id, price_amount, id)
            WHERE status = 'active';
        CREATE INDEX products_name ON products (tenant_id, name, id) WHERE status = 'active';
        CREATE INDEX products_category ON products (tenant_id, category) WHERE status = 'active';
        CREATE INDEX products_seller ON products (tenant_id, seller_id);
        CREATE INDEX products_search ON products USING gin (search);

        -- Global on purpose: keys are digests of addresses and accounts, no tenant data.
        CREATE TABLE rate_limit_counters (
            key text PRIMARY KEY,
            window_start timestamptz NOT NULL,
            hits integer NOT NULL CHECK (hits >= 1)
        );
        CREATE INDEX rate_limit_counters_age ON rate_limit_counters (window_start);
        """
    )
    for table in TENANT_OWNED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            f" USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
        )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
    op.execute(f"GRANT SELECT ON tenants, alembic_version TO {app}")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE ON users, auth_sessions, refresh_tokens, products TO {app}"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limit_counters TO {app}")


def downgrade() -> None:
    app = _app_role()
    op.execute(f"REVOKE ALL ON tenants, alembic_version FROM {app}")
    op.execute(
        "DROP TABLE rate_limit_counters, products, refresh_tokens, auth_sessions, users, tenants"
    )
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {app}")
