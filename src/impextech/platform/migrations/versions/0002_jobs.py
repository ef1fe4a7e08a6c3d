"""Jobs: the job library's queue tables and the tenant-scoped job status table.

The queue itself is Procrastinate's schema (global on purpose, listed in the tenancy allowlist):
its rows carry only a tenant id and a job id. Everything a tenant may see about a job (payload,
progress, result, errors) lives in ``jobs``, which is tenant-owned like every other table.

``products.erp_synced_version`` records the product version the tenant's ERP acknowledged, so
the ERP push is a no-op when it has nothing new to send.

Revision ID: 0002
"""

from __future__ import annotations

from importlib import resources

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CURRENT_TENANT = "nullif(current_setting('app.tenant_id', true), '')::uuid"

# The library's schema.sql is its newest full schema. A newer library whose schema moved on
# must come with a migration that applies its own migration files; refuse to guess.
PROCRASTINATE_NEWEST_MIGRATION = "03.04.00_50_post_add_retry_failed_job_procedure.sql"
PROCRASTINATE_TABLES = (
    "procrastinate_jobs",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
    "procrastinate_events",
)


def _app_role() -> str:
    role: str = op.get_context().config.attributes["app_role"]  # type: ignore[union-attr]
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role


def _procrastinate_schema() -> str:
    package = resources.files("procrastinate") / "sql"
    newest = max(
        entry.name for entry in (package / "migrations").iterdir() if entry.name.endswith(".sql")
    )
    if newest != PROCRASTINATE_NEWEST_MIGRATION:
        raise RuntimeError(
            f"the installed procrastinate's schema is at {newest}, this migration expects"
            f" {PROCRASTINATE_NEWEST_MIGRATION}: add a migration applying the library's new files"
        )
    return (package / "schema.sql").read_text(encoding="utf-8")


def upgrade() -> None:
    app = _app_role()
    op.execute(_procrastinate_schema())
    op.execute(
        """
        CREATE TABLE jobs (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
            queue text NOT NULL,
            state text NOT NULL CHECK (
                state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'discarded')
            ),
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts integer NOT NULL CHECK (max_attempts >= 1),
            payload jsonb NOT NULL,
            result jsonb,
            last_error text,
            progress_done integer CHECK (progress_done >= 0),
            progress_total integer CHECK (progress_total >= 0),
            dedup_key text,
            lock_key text,
            queue_job_id bigint,
            created_by uuid,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            started_at timestamptz,
            finished_at timestamptz,
            next_attempt_at timestamptz,
            UNIQUE (tenant_id, id),
            FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
        );
        -- One pending job per (kind, key): a second identical request joins the first.
        CREATE UNIQUE INDEX jobs_pending_dedup ON jobs (tenant_id, kind, dedup_key)
            WHERE state = 'queued' AND dedup_key IS NOT NULL;
        CREATE INDEX jobs_tenant_state ON jobs (tenant_id, state, created_at DESC, id DESC);
        CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id DESC);

        ALTER TABLE products ADD COLUMN erp_synced_version integer
            CHECK (erp_synced_version >= 1);
        """
    )
    op.execute("ALTER TABLE jobs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE jobs FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON jobs"
        f" USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON jobs TO {app}")
    tables = ", ".join(PROCRASTINATE_TABLES)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {app}")
    op.execute(
        "GRANT USAGE, SELECT ON SEQUENCE procrastinate_jobs_id_seq,"
        " procrastinate_workers_id_seq, procrastinate_periodic_defers_id_seq,"
        f" procrastinate_events_id_seq TO {app}"
    )


def downgrade() -> None:
    app = _app_role()
    op.execute(f"REVOKE ALL ON jobs FROM {app}")
    op.execute("DROP TABLE jobs")
    op.execute("ALTER TABLE products DROP COLUMN erp_synced_version")
    tables = ", ".join(PROCRASTINATE_TABLES)
    op.execute(f"REVOKE ALL ON {tables} FROM {app}")
    op.execute(f"DROP TABLE {tables} CASCADE")
    op.execute(
        """
        DO $$
        DECLARE fn record;
        BEGIN
            FOR fn IN
                SELECT p.oid::regprocedure AS sig FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP FUNCTION ' || fn.sig || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_status,
            procrastinate_job_event_type CASCADE;
        """
    )
