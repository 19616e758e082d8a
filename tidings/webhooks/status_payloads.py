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


# v0.1 names Viber's channel differently from v1.
_V01_CHANNEL = {Channel.VIBER: "viber_service_msg"}


def _v01_party(channel: Channel, address: str, *, sender: bool) -> dict[str, str]:
    party = {"type": _V01_CHANNEL.get(channel, channel.value)}
    uses_id = channel is Channel.MESSENGER or (sender and channel is Channel.VIBER)
    party["id" if uses_id else "number"] = address
    return party


def render_status_v01(event: StatusEvent) -> dict[str, Any]:
    """The nested v0.1 shape (messages-olympus.yml MessageStatus)."""
    body: dict[str, Any] = {
        "message_uuid": event.message_uuid,
        "to": _v01_party(event.channel, event.to, sender=False),
        "from": _v01_party(event.channel, event.sender, sender=True),
        "timestamp": event.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{event.timestamp.microsecond // 1000:03d}Z",
        "status": event.status.value,
    }
    if event.error is not None:
        body["error"] = {"code": int(event.error.code), "reason": event.error.detail}
    if event.usage is not None:
        body["usage"] = {"currency": event.usage.currency, "price": _price(event)}
    if event.client_ref is not None:
        body["client_ref"] = event.client_ref
    return body


def _price(event: StatusEvent) -> str:
    assert event.usage is not None
    return format(event.usage.price.normalize(), "f")


def render_status(event: StatusEvent, version: WebhookVersion) -> bytes:
    """The exact bytes that are sent and signed; stored with the job so every retry is identical."""
    render = render_status_v1 if version is WebhookVersion.V1 else render_status_v01
    return json.dumps(render(event), separators=(",", ":"), ensure_ascii=False).encode()
