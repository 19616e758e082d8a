"""The SMS API's shape of an inbound message (sms.yml `InboundMessage`): what an account still on
the SMS API settings receives. The message id is the stored message's UUID."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from tidings.domain.inbound import InboundMessage


def render_inbound(message: InboundMessage) -> dict[str, Any]:
    moment = message.received_at.astimezone(UTC)
    return {
        "msisdn": message.sender,
        "to": message.to,
        "messageId": message.uuid,
        "text": message.text or "",
        "type": "unicode" if message.is_unicode else "text",
        "keyword": message.keyword,
        "api-key": message.account_id,
        "message-timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "timestamp": str(int(moment.timestamp())),
    }
