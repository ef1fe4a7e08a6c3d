"""Queue table upkeep: vacuum and analyze the job library's queue far more often than the default.

The queue churns (every job is inserted, updated twice and, after three days, deleted) and a
bulk enqueue can multiply its size in a second. With the default thresholds (20 % of the
table) its planner statistics lag behind, and the library's fetch was measured planning a sort
of the whole backlog instead of an index scan (bench/jobs, docs/benchmarks.md); dead index
entries left by fetched jobs also pile up until a vacuum. A fixed, small threshold keeps both
fresh.

Revision ID: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UPKEEP = (
    "autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000,"
    " autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 1000,"
    " autovacuum_analyze_scale_factor = 0.0, autovacuum_analyze_threshold = 1000"
)


def upgrade() -> None:
    op.execute(f"ALTER TABLE procrastinate_jobs SET ({_UPKEEP})")


def downgrade() -> None:
    names = ", ".join(part.split("=")[0].strip() for part in _UPKEEP.split(","))
    op.execute(f"ALTER TABLE procrastinate_jobs RESET ({names})")
