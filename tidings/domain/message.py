"""The message: what was asked to be sent, and where it is in its life."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    SMS = "sms"
    MMS = "mms"
    RCS = "rcs"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    VIBER = "viber_service"
    EMAIL = "email"


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    TEMPLATE = "template"
    STICKER = "sticker"
    CUSTOM = "custom"
    VCARD = "vcard"
    CARD = "card"
    CAROUSEL = "carousel"
    CONTENT = "content"


class Status(StrEnum):
    """Where a message is. `accepted` is ours (stored, not yet handed to a provider); the rest are Vonage's."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    READ = "read"
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def rank(self) -> int:
        """Order of progress: an event never moves a message back to a lower rank."""
        return _RANK[self]


_FINAL = frozenset({Status.READ, Status.REJECTED, Status.UNDELIVERABLE})
_RANK = {
    Status.ACCEPTED: 0,
    Status.SUBMITTED: 1,
    Status.DELIVERED: 2,
    Status.READ: 3,
    Status.REJECTED: 3,
    Status.UNDELIVERABLE: 3,
}


def moves_forward(current: Status, new: Status) -> bool:
    """A report that would move a message backwards, or repeats its state, changes nothing."""
    return not current.is_final and new.rank > current.rank


def statuses_before(new: Status) -> tuple[Status, ...]:
    """The statuses a message may be in for `new` to apply."""
    return tuple(status for status in Status if moves_forward(status, new))


class WebhookVersion(StrEnum):
    V1 = "v1"
    V0_1 = "v0.1"


@dataclass(frozen=True)
class Usage:
    currency: str
    price: Decimal


@dataclass(frozen=True)
class Message:
    """An outbound message as accepted from a client.

    `content` holds the channel- and type-specific payload in its v1 wire shape (for SMS text:
    {"text": ...}); `options` the channel options object (for SMS: encoding_type, entity_id, ...).
    """

    uuid: str
    account_id: str
    channel: Channel
    message_type: MessageType
    to: str
    sender: str
    content: dict[str, Any]
    created_at: datetime
    options: dict[str, Any] = field(default_factory=dict)
    client_ref: str | None = None
    webhook_url: str | None = None
    webhook_version: WebhookVersion | None = None
    ttl: int | None = None
    trusted_recipient: bool | None = None
    application_id: str | None = None
    status: Status = Status.ACCEPTED
    usage: Usage | None = None  # priced when accepted; a provider's own figure replaces it
    segments: int | None = None

    @property
    def text(self) -> str | None:
        value = self.content.get("text")
        return value if isinstance(value, str) else None
