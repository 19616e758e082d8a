"""What happens to a message after it is accepted, as reported to the client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Channel, Status, Usage


@dataclass(frozen=True)
class StatusEvent:
    id: str
    message_uuid: str
    channel: Channel
    to: str
    sender: str
    status: Status
    timestamp: datetime
    client_ref: str | None = None
    usage: Usage | None = None
    segments: int | None = None
    error: DeliveryError | None = None
    network_code: str | None = None
