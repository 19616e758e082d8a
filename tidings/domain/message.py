"""The message: what was asked to be sent, and where it is in its life."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tidings.domain import content
from tidings.domain.channel_options import ChannelOptions
from tidings.domain.content import Content, InboundContent


class Channel(StrEnum):
    SMS = "sms"
    MMS = "mms"
    RCS = "rcs"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    VIBER = "viber_service"
    EMAIL = "email"


class MessageType(StrEnum):
    """The `message_type` of a message in either direction; which ones a channel has, outbound and
    inbound, the channel registry (channels.py) says."""

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
    REACTION = "reaction"
    # inbound only
    LOCATION = "location"
    REPLY = "reply"
    BUTTON = "button"
    ORDER = "order"
    UNSUPPORTED = "unsupported"


class Status(StrEnum):
    """Where a message is. `accepted` is ours (stored, not yet handed to a provider); the rest are Vonage's."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    READ = "read"
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"
    REVOKED = "revoked"  # ours too: taken back at the client's request (PATCH), never reported

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def is_reported(self) -> bool:
        """Whether reaching this status sends a status webhook (the published status enum)."""
        return self not in (Status.ACCEPTED, Status.REVOKED)

    @property
    def rank(self) -> int:
        """Order of progress: an event never moves a message back to a lower rank."""
        return _RANK[self]


_FINAL = frozenset({Status.READ, Status.REJECTED, Status.UNDELIVERABLE, Status.REVOKED})
_RANK = {
    Status.ACCEPTED: 0,
    Status.SUBMITTED: 1,
    Status.DELIVERED: 2,
    Status.READ: 3,
    Status.REJECTED: 3,
    Status.UNDELIVERABLE: 3,
    Status.REVOKED: 3,
}


def moves_forward(current: Status, new: Status) -> bool:
    """A report that would move a message backwards, or repeats its state, changes nothing. A
    revocation applies only before delivery: a message its recipient has is not taken back, even
    when the receipt saying so lands while the revocation is under way."""
    if new is Status.REVOKED:
        return current in (Status.ACCEPTED, Status.SUBMITTED)
    return not current.is_final and new.rank > current.rank


def statuses_before(new: Status) -> tuple[Status, ...]:
    """The statuses a message may be in for `new` to apply."""
    return tuple(status for status in Status if moves_forward(status, new))


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class WebhookVersion(StrEnum):
    V1 = "v1"
    V0_1 = "v0.1"


@dataclass(frozen=True)
class Usage:
    currency: str
    price: Decimal


@dataclass(frozen=True)
class Message:
    """An outbound message as accepted from a client: what to send (`content`, typed by its
    message type), how (`options`, typed by its channel), and where it is in its life."""

    uuid: str
    account_id: str
    channel: Channel
    message_type: MessageType
    to: str
    sender: str
    content: Content
    created_at: datetime
    options: ChannelOptions | None = None
    context_message_uuid: str | None = None  # the message this one quotes, replies or reacts to
    client_ref: str | None = None
    webhook_url: str | None = None
    webhook_version: WebhookVersion | None = None
    ttl: int | None = None
    trusted_recipient: bool | None = None
    application_id: str | None = None
    status: Status = Status.ACCEPTED
    usage: Usage | None = None  # priced when accepted; a provider's own figure replaces it
    segments: int | None = None
    connector: str | None = None  # the connector that took it, once one has


@dataclass(frozen=True)
class MessageRecord:
    """A stored message of either direction, as much of it as updating it needs: which one it
    is (its provider references among them) and where it stands."""

    uuid: str
    account_id: str
    channel: Channel
    direction: Direction
    to: str
    sender: str
    status: Status
    connector: str | None
    provider_refs: tuple[str, ...]
    created_at: datetime


def content_type(message_type: MessageType) -> type[Content] | type[InboundContent]:
    """The type of content a message of this type carries, in either direction."""
    return _CONTENT_TYPES[message_type]


_CONTENT_TYPES: dict[MessageType, type[Content] | type[InboundContent]] = {
    MessageType.TEXT: content.Text,
    MessageType.IMAGE: content.Media,
    MessageType.AUDIO: content.Media,
    MessageType.VIDEO: content.Media,
    MessageType.FILE: content.Media,
    MessageType.VCARD: content.Media,
    MessageType.CONTENT: content.MediaList,
    MessageType.TEMPLATE: content.Template,
    MessageType.STICKER: content.Sticker,
    MessageType.CUSTOM: content.Custom,
    MessageType.REACTION: content.Reaction,
    MessageType.CARD: content.Card,
    MessageType.CAROUSEL: content.Carousel,
    MessageType.LOCATION: content.Location,
    MessageType.REPLY: content.Reply,
    MessageType.BUTTON: content.Button,
    MessageType.ORDER: content.Order,
    MessageType.UNSUPPORTED: content.Unsupported,
}
