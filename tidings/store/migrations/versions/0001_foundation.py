"""Foundation: accounts, secrets, messages, events, the job queue and webhook attempts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tidings.store.types import BigId, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("api_key", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("signature_secret_enc", sa.Text, nullable=False),
        sa.Column("status_url", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "account_secrets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_account_secrets_account", "account_secrets", ["account_id"])
    op.create_table(
        "messages",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("application_id", sa.String(36)),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("to_address", sa.String(100), nullable=False),
        sa.Column("from_address", sa.String(100), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("client_ref", sa.String(100)),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_version", sa.String(8)),
        sa.Column("ttl", sa.Integer),
        sa.Column("trusted_recipient", sa.Boolean),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("segments", sa.Integer),
        sa.Column("price", sa.Numeric(14, 6)),
        sa.Column("currency", sa.String(3)),
        sa.Column("provider", sa.String(32)),
        sa.Column("provider_ref", sa.String(100)),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_detail", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_messages_account_created", "messages", ["account_id", "created_at"])
    op.create_index("ix_messages_provider_ref", "messages", ["provider", "provider_ref"])
    op.create_table(
        "message_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "message_uuid", sa.String(36), sa.ForeignKey("messages.uuid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_detail", sa.Text),
        sa.Column("webhook_url", sa.Text),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_uuid", "occurred_at"])
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("ordering_key", sa.String(100)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("run_at", UtcDateTime, nullable=False),
        sa.Column("lease_until", UtcDateTime),
        sa.Column("leased_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
    )
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])
    op.create_index("ix_jobs_ordering", "jobs", ["ordering_key", "id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("message_uuid", sa.String(36)),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("attempted_at", UtcDateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Numeric(10, 2)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_webhook_attempts_event", "webhook_attempts", ["event_id"])
    op.create_index("ix_webhook_attempts_account", "webhook_attempts", ["account_id", "attempted_at"])


def downgrade() -> None:
    for table in ("webhook_attempts", "jobs", "message_events", "messages", "account_secrets", "accounts"):
        op.drop_table(table)
