"""Status webhook bodies, in the shape the receiving application asked for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tidings.domain.errors import ERRORS_BASE
from tidings.domain.events import StatusEvent
from tidings.domain.message import Channel, WebhookVersion


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the published examples render it (2025-02-03T12:14:25Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_status_v1(event: StatusEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": event.message_uuid,
        "to": event.to,
        "from": event.sender,
        "timestamp": iso_timestamp(event.timestamp),
        "status": event.status.value,
        "channel": event.channel.value,
    }
    if event.client_ref is not None:
        body["client_ref"] = event.client_ref
    if event.error is not None:
        body["error"] = {
            "type": f"{ERRORS_BASE}/messages#{int(event.error.code)}",
            "title": str(int(event.error.code)),
            "detail": event.error.detail,
            "instance": event.id.replace("-", ""),
        }
    if event.usage is not None:
        body["usage"] = {
            "currency": event.usage.currency,
            "price": format(event.usage.price.normalize(), "f"),
        }
    if event.channel is Channel.SMS:
        if event.network_code:
            body["destination"] = {"network_code": event.network_code}
        if event.segments is not None:
            body["sms"] = {"count_total": str(event.segments)}
    return body


def render_status(event: StatusEvent, version: WebhookVersion) -> bytes:
    """The exact bytes that are sent and signed; stored with the job so every retry is identical."""
    if version is not WebhookVersion.V1:
        raise NotImplementedError(f"status webhooks in {version.value} are not rendered yet")
    return json.dumps(render_status_v1(event), separators=(",", ":"), ensure_ascii=False).encode()
