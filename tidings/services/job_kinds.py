"""The kinds of durable job, and the payload each carries."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    DELIVER_MESSAGE = "deliver_message"  # {"message_uuid"}
    PROVIDER_REPORT = "provider_report"  # {"message_uuid", "status", "provider_ref", "error_code"?, ...}
    SEND_WEBHOOK = (
        "send_webhook"  # {"event_id", "account_id", "application_id", "url", "body", "message_uuid"}
    )
