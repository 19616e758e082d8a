"""Send rate limits of an account and of an application (messages per second; NULL: the default).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("messages_per_second", sa.Float))
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("messages_per_second", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("messages_per_second")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("messages_per_second")
