"""A stored message as its owner may look it up: what it was, and every status it went through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.domain.content import Content, InboundContent
from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Channel, Direction, MessageType, Status, Usage


@dataclass(frozen=True)
class StatusChange:
    status: Status
    at: datetime
    error: DeliveryError | None = None


@dataclass(frozen=True)
class MessageView:
    uuid: str
    direction: Direction
    channel: Channel
    message_type: MessageType
    to: str
    sender: str
    content: Content | InboundContent
    status: Status
    created_at: datetime
    updated_at: datetime
    client_ref: str | None = None
    application_id: str | None = None
    error: DeliveryError | None = None
    usage: Usage | None = None
    segments: int | None = None
    history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class MessageFilter:
    """What a listing may narrow by; every given condition must hold."""

    to: str | None = None
    sender: str | None = None
    channel: Channel | None = None
    status: Status | None = None
    client_ref: str | None = None
    direction: Direction | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class Page:
    messages: tuple[MessageView, ...]
    next_cursor: str | None
