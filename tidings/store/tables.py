"""The schema. Migrations in store/migrations/ create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    false,
    text,
)

from tidings.store.types import BigId, UtcDateTime

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("api_key", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # active | disabled
    Column("signature_secret_enc", Text, nullable=False),  # encrypted at rest, see auth/secret_box.py
    Column("status_url", Text),  # default status webhook for Basic-auth sends
    Column("created_at", UtcDateTime, nullable=False),
    # Account settings (Account API): legacy SMS API callbacks and the inbound SMS format switch.
    Column("mo_callback_url", Text),
    Column("dr_callback_url", Text),
    Column("inbound_sms_api", String(8), nullable=False, server_default="messages"),  # messages | sms
    Column("signature_method", String(16), nullable=False, server_default="md5hash"),
    # Money: Decimal, in the account's currency; credit_limit NULL means unlimited.
    Column("currency", String(3), nullable=False, server_default="EUR"),
    Column("balance", Numeric(18, 6), nullable=False, server_default="0"),
    Column("credit_limit", Numeric(18, 6)),
    Column("auto_reload", Boolean, nullable=False, server_default=false()),
    # Send rate limit: NULL follows the settings' default, 0 means none (services/send_limits.py).
    Column("messages_per_second", Float),
)

account_secrets = Table(
    "account_secrets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", Text, nullable=False),  # argon2id
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_account_secrets_account", "account_id"),
)

applications = Table(
    "applications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("public_key", Text, nullable=False),
    # Stored as the client sent them (Application API v2 shape); Tidings acts on `messages`.
    Column("capabilities", JSON, nullable=False),
    Column("privacy", JSON),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("messages_per_second", Float),  # as the account's, within it
    Index("ix_applications_account", "account_id", "created_at"),
)

numbers = Table(
    "numbers",
    metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False),
    Column("country", String(2), nullable=False),
    Column("type", String(16), nullable=False),  # mobile-lvn | landline | landline-toll-free
    Column("features", JSON, nullable=False),  # ["SMS", "MMS", "VOICE"]
    Column("app_id", String(36), ForeignKey("applications.id", ondelete="SET NULL")),
    Column("mo_http_url", Text),
    Column("voice_callback_type", String(8)),
    Column("voice_callback_value", Text),
    Column("voice_status_callback", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_numbers_account", "account_id"),
    Index("ix_numbers_app", "app_id"),
)

prices = Table(
    "prices",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("prefix", String(16), primary_key=True),  # destination prefix; "" is the channel's default
    Column("price", Numeric(14, 6), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("country", String(2)),
    Column("network_name", String(100)),
)

jwt_replays = Table(
    "jwt_replays",
    metadata,
    Column("jti", String(200), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_jwt_replays_expires", "expires_at"),
)

unroutable_inbound = Table(
    "unroutable_inbound",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("to_address", String(100), nullable=False),
    Column("from_address", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("application_id", String(36)),
    Column("direction", String(8), nullable=False),  # outbound | inbound
    Column("channel", String(16), nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("to_address", String(100), nullable=False),
    Column("from_address", String(100), nullable=False),
    # Typed content and channel options in their stored form (content_codec.py), not a wire format.
    Column("content", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("context_message_uuid", String(36)),  # the message this one replies or reacts to
    Column("client_ref", String(100)),
    Column("webhook_url", Text),
    Column("webhook_version", String(8)),
    Column("ttl", Integer),
    Column("trusted_recipient", Boolean),
    Column("status", String(16), nullable=False),
    Column("segments", Integer),
    Column("price", Numeric(14, 6)),
    Column("currency", String(3)),
    Column("connector", String(64)),  # the connector that carried (or received) it
    Column("error_code", Integer),
    Column("error_detail", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_messages_account_created", "account_id", "created_at"),
)

# The parts a message travelled as, each with its provider's reference and its own status: the
# message's status combines theirs (services/receipts.py). Receipts find their part by (connector,
# provider reference), and, where the source of a receipt belongs to one account, by account too;
# the index leads with the reference, the selective key (migration 0007 says why).
message_parts = Table(
    "message_parts",
    metadata,
    Column("message_uuid", String(36), ForeignKey("messages.uuid", ondelete="CASCADE"), primary_key=True),
    Column("part_index", Integer, primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("provider_ref", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", Integer),
    Column("error_detail", Text),
    Column("network_code", String(16)),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_message_parts_reference", "provider_ref", "connector"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("message_uuid", String(36), ForeignKey("messages.uuid", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("error_code", Integer),
    Column("error_detail", Text),
    Column("webhook_url", Text),  # where its webhook went, or NULL when nobody asked for one
    Index("ix_message_events_message", "message_uuid", "occurred_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(8), nullable=False),  # pending | leased | dead (done jobs are deleted)
    # Jobs sharing an ordering key run one at a time, oldest first (e.g. one message's webhooks).
    Column("ordering_key", String(100)),
    Column("attempts", Integer, nullable=False),
    Column("run_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("leased_by", String(64)),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    # What a claim asks (store/writes.py), over open jobs only: migrations 0005 and 0008 say why.
    Index(
        "ix_jobs_open_ordering",
        "ordering_key",
        "id",
        postgresql_where=text("state IN ('pending', 'leased')"),
        sqlite_where=text("state IN ('pending', 'leased')"),
    ),
    Index(
        "ix_jobs_pending_run_at",
        "run_at",
        "id",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index(
        "ix_jobs_leased_until",
        "lease_until",
        "id",
        postgresql_where=text("state = 'leased'"),
        sqlite_where=text("state = 'leased'"),
    ),
    # Done jobs are deleted: without AUTOINCREMENT, SQLite would give the newest one's id to the
    # next job queued, and a job id (in logs, in webhook attempts) must name one job.
    sqlite_autoincrement=True,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigId, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("message_uuid", String(36)),
    Column("url", Text, nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Numeric(10, 2)),
    Column("error", Text),
    Index("ix_webhook_attempts_event", "event_id"),
    Index("ix_webhook_attempts_account", "account_id", "attempted_at"),
)

# `Idempotency-Key` on POST /v1/messages: the first answer to a key, kept for a day per account.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of the request body
    Column("message_uuid", String(36), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

# Addresses on the platforms that are not numbers (a Messenger page, a Viber service, a WhatsApp
# business number, an RCS agent), linked to the account that holds them and, optionally, an
# application: how an inbound message on those channels finds its account.
external_accounts = Table(
    "external_accounts",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("external_id", String(100), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.api_key", ondelete="CASCADE"), nullable=False),
    Column("application_id", String(36), ForeignKey("applications.id", ondelete="SET NULL")),
    Column("name", String(200)),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_external_accounts_account", "account_id"),
)

# SQLite's group commit only: which batch of each runner committed last (migration 0006 says why).
commit_markers = Table(
    "commit_markers",
    metadata,
    Column("writer", String(32), primary_key=True),
    Column("batch", BigInteger, nullable=False),
)
