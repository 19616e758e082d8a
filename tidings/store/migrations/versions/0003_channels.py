"""Every channel: message parts, the connector a message went through, reply context, idempotency
keys, external accounts; job retry limits move from each row to its kind.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from tidings.store.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("context_message_uuid", sa.String(36)))
        batch.alter_column("provider", new_column_name="connector", type_=sa.String(64))
        batch.drop_index("ix_messages_provider_ref")
        batch.drop_column("provider_ref")
    op.create_table(
        "message_parts",
        sa.Column(
            "message_uuid",
            sa.String(36),
            sa.ForeignKey("messages.uuid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part_index", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("provider_ref", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_detail", sa.Text),
        sa.Column("network_code", sa.String(16)),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_message_parts_provider_ref", "message_parts", ["connector", "provider_ref"])
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("max_attempts")
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("message_uuid", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.create_table(
        "external_accounts",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("external_id", sa.String(100), primary_key=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("application_id", sa.String(36), sa.ForeignKey("applications.id", ondelete="SET NULL")),
        sa.Column("name", sa.String(200)),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_external_accounts_account", "external_accounts", ["account_id"])


def downgrade() -> None:
    op.drop_table("external_accounts")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("max_attempts", sa.Integer, nullable=False, server_default="12"))
    op.drop_table("message_parts")
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("provider_ref", sa.String(100)))
        batch.alter_column("connector", new_column_name="provider", type_=sa.String(32))
        batch.drop_column("context_message_uuid")
    op.create_index("ix_messages_provider_ref", "messages", ["provider", "provider_ref"])
