"""The exact bytes of a webhook: the body in the receiver's chosen shape, compact UTF-8 JSON.

They are rendered once, when the event is recorded, and stored with the webhook's job, so every
retry sends (and signs) the same bytes.
"""

from __future__ import annotations

from typing import Any

from tidings import compact_json
from tidings.domain.events import StatusEvent
from tidings.domain.inbound import InboundMessage, InboundShape
from tidings.domain.message import WebhookVersion
from tidings.webhooks import legacy_sms, v01, v1


def _bytes(body: dict[str, Any]) -> bytes:
    return compact_json.dumps(body)


def render_status(event: StatusEvent, version: WebhookVersion) -> bytes:
    return _bytes(v1.render_status(event) if version is WebhookVersion.V1 else v01.render_status(event))


_INBOUND = {
    InboundShape.V1: v1.render_inbound,
    InboundShape.V0_1: v01.render_inbound,
    InboundShape.LEGACY_SMS: legacy_sms.render_inbound,
}


def render_inbound(message: InboundMessage, shape: InboundShape) -> bytes:
    return _bytes(_INBOUND[shape](message))
