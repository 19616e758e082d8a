"""Parts found by their provider reference first, then by connector.

A receipt finds its part by (connector, provider reference), and the worker asks for a batch of
them in one prepared statement (`provider_ref = ANY($refs)`, store/lookups.py). With the index led
by `connector`, PostgreSQL's generic plan for that statement, chosen while the table was still
small, used only the connector as the index condition and filtered the references out of every
part that connector ever sent: a lookup took 15 to 20 ms after a minute at 300 messages a
second, and the worker fell behind. Led by the reference, the one selective key, the index is
probed once per reference. (Plans made on an empty table can go wrong in other ways, a
sequential scan: the lookups' connection plans each query for its keys, store/lookups.py.)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_message_parts_provider_ref", table_name="message_parts")
    op.create_index("ix_message_parts_reference", "message_parts", ["provider_ref", "connector"])


def downgrade() -> None:
    op.drop_index("ix_message_parts_reference", table_name="message_parts")
    op.create_index("ix_message_parts_provider_ref", "message_parts", ["connector", "provider_ref"])
