"""What happens to a message after it is accepted: what providers report, and what the client is told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Channel, Status, Usage


@dataclass(frozen=True)
class Receipt:
    """A provider's word on one part of a message it took: delivered, read, failed…

    The part is named the provider's way, by the connector that carried it and the reference the
    provider gave it. `account_id`, when the source of the receipt belongs to one account (a
    tenant driving the simulator, a provider account of one tenant), limits the match to that
    account's messages."""

    connector: str
    provider_ref: str
    status: Status
    occurred_at: datetime
    error: DeliveryError | None = None
    network_code: str | None = None
    usage: Usage | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class StatusEvent:
    """A status a message reached, as its status webhook tells it."""

    id: str
    message_uuid: str
    channel: Channel
    to: str
    sender: str
    status: Status
    timestamp: datetime
    client_ref: str | None = None
    usage: Usage | None = None
    segments: int | None = None  # parts, on a channel that splits messages into segments
    error: DeliveryError | None = None
    network_code: str | None = None
