"""The options a client may set per channel (the v1 request's `sms`, `whatsapp`, `messenger`,
`viber_service` and `rcs` objects), as typed values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from tidings.domain.sms_encoding import SmsEncoding


@dataclass(frozen=True, slots=True)
class SmsOptions:
    encoding_type: SmsEncoding | None = None
    content_id: str | None = None  # regulatory template ids (e.g. India's DLT)
    entity_id: str | None = None
    pool_id: str | None = None  # send from a number pool; `from` stays the fallback


@dataclass(frozen=True, slots=True)
class WhatsappOptions:
    """How a template is resolved (its locale, the language policy) and the message's category."""

    locale: str | None = None
    policy: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class MessengerOptions:
    category: str | None = None  # response | update | message_tag
    tag: str | None = None  # required with message_tag


@dataclass(frozen=True, slots=True)
class ViberAction:
    """A button under a Viber text or image."""

    url: str
    text: str


@dataclass(frozen=True, slots=True)
class ViberOptions:
    category: str | None = None  # transaction | promotion
    ttl: int | None = None
    type: str | None = None  # string | template
    action: ViberAction | None = None
    duration: str | None = None  # a video's length in seconds, as the API spells it: a string
    file_size: str | None = None  # a video's size in MB, likewise


@dataclass(frozen=True, slots=True)
class RcsOptions:
    category: str | None = None
    card_orientation: str | None = None  # VERTICAL | HORIZONTAL
    image_alignment: str | None = None  # LEFT | RIGHT
    card_width: str | None = None  # SMALL | MEDIUM, for carousels


ChannelOptions: TypeAlias = SmsOptions | WhatsappOptions | MessengerOptions | ViberOptions | RcsOptions
