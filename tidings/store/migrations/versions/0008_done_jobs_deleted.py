"""Done jobs are deleted when they finish (queue/jobs.py), so the queue table holds only the work
in hand; leased jobs get an index by lease end; and on PostgreSQL the table is vacuumed on a
count of dead rows rather than a share of the table.

- The done jobs still here are history nothing reads: deleted.
- The (state, run_at) index over every job is replaced by one over leased jobs by lease end, what
  the claim's search for expired leases asks (store/writes.py). Over every state, its entries
  for leased jobs were read as a bitmap, dead ones included, on every claim.
- On SQLite the table is rebuilt with AUTOINCREMENT, so that the id of a deleted job (the newest,
  say) is never given to another: SQLite would otherwise reuse it.
- Autovacuum's default waits for a fifth of the table to be dead rows. A queue table turns over
  many times a minute, and each job's dead entries slow the claim until a vacuum removes them, so
  `jobs` is vacuumed (and analysed) after a fixed count of dead rows instead, unthrottled: the
  table is small and the vacuum quick. The workers also vacuum it themselves
  (store/queue_vacuum.py), for servers where autovacuum comes rarely or not at all.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

LEASED = sa.text("state = 'leased'")
PENDING = sa.text("state = 'pending'")
OPEN = sa.text("state IN ('pending', 'leased')")
AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "5000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "5000",
    "autovacuum_vacuum_cost_delay": "0",
}


def upgrade() -> None:
    op.drop_index("ix_jobs_state_run_at", table_name="jobs")
    if op.get_bind().dialect.name == "sqlite":
        # Before the delete, so that the new sequence starts past every id given so far.
        _rebuild_on_sqlite(autoincrement=True)
    op.execute("DELETE FROM jobs WHERE state = 'done'")
    op.create_index(
        "ix_jobs_leased_until", "jobs", ["lease_until", "id"], postgresql_where=LEASED, sqlite_where=LEASED
    )
    if op.get_bind().dialect.name == "postgresql":
        settings = ", ".join(f"{name} = {value}" for name, value in AUTOVACUUM.items())
        op.execute(f"ALTER TABLE jobs SET ({settings})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE jobs RESET ({', '.join(AUTOVACUUM)})")
    op.drop_index("ix_jobs_leased_until", table_name="jobs")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(autoincrement=False)
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])


def _rebuild_on_sqlite(*, autoincrement: bool) -> None:
    """SQLite cannot change a table's key in place: the table is copied into a new one. Its
    partial indexes are dropped first and made again after, their conditions written out here
    rather than left to the copy's reflection."""
    op.drop_index("ix_jobs_pending_run_at", table_name="jobs")
    op.drop_index("ix_jobs_open_ordering", table_name="jobs")
    with op.batch_alter_table(
        "jobs", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
    op.create_index("ix_jobs_open_ordering", "jobs", ["ordering_key", "id"], sqlite_where=OPEN)
    op.create_index("ix_jobs_pending_run_at", "jobs", ["run_at", "id"], sqlite_where=PENDING)
