"""Commit markers: how SQLite's group commit finds out whether a batch committed when its writer
process died before answering (store/batch_runners.py). Each runner has a row, and each batch sets
it to the batch's number in the batch's own transaction. PostgreSQL asks by transaction id and
leaves the table empty.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commit_markers",
        sa.Column("writer", sa.String(32), primary_key=True),
        sa.Column("batch", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("commit_markers")
