"""Applications, numbers, account settings and money, prices, JWT replay cache, unroutable inbound.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from tidings.store.types import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("mo_callback_url", sa.Text))
        batch.add_column(sa.Column("dr_callback_url", sa.Text))
        batch.add_column(
            sa.Column("inbound_sms_api", sa.String(8), nullable=False, server_default="messages")
        )
        batch.add_column(
            sa.Column("signature_method", sa.String(16), nullable=False, server_default="md5hash")
        )
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"))
        batch.add_column(sa.Column("balance", sa.Numeric(18, 6), nullable=False, server_default="0"))
        batch.add_column(sa.Column("credit_limit", sa.Numeric(18, 6)))
        batch.add_column(sa.Column("auto_reload", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "applications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("capabilities", sa.JSON, nullable=False),
        sa.Column("privacy", sa.JSON),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_applications_account", "applications", ["account_id", "created_at"])
    op.create_table(
        "numbers",
        sa.Column("msisdn", sa.String(20), primary_key=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("app_id", sa.String(36), sa.ForeignKey("applications.id", ondelete="SET NULL")),
        sa.Column("mo_http_url", sa.Text),
        sa.Column("voice_callback_type", sa.String(8)),
        sa.Column("voice_callback_value", sa.Text),
        sa.Column("voice_status_callback", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_numbers_account", "numbers", ["account_id"])
    op.create_index("ix_numbers_app", "numbers", ["app_id"])
    op.create_table(
        "prices",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("prefix", sa.String(16), primary_key=True),
        sa.Column("price", sa.Numeric(14, 6), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("network_name", sa.String(100)),
    )
    op.create_table(
        "jwt_replays",
        sa.Column("jti", sa.String(200), primary_key=True),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_jwt_replays_expires", "jwt_replays", ["expires_at"])
    op.create_table(
        "unroutable_inbound",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("to_address", sa.String(100), nullable=False),
        sa.Column("from_address", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("unroutable_inbound", "jwt_replays", "prices", "numbers", "applications"):
        op.drop_table(table)
    with op.batch_alter_table("accounts") as batch:
        for column in (
            "auto_reload",
            "credit_limit",
            "balance",
            "currency",
            "signature_method",
            "inbound_sms_api",
            "dr_callback_url",
            "mo_callback_url",
        ):
            batch.drop_column(column)
