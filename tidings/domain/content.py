"""What a message carries, one type per kind of content, whatever channel or API version it came in.

The wire modules (v1 today, v0.1 and the SMS API later) convert their requests into these and
back; connectors read them to build a provider's request. Field names follow the Messages API's
vocabulary (url, caption, postback_data…), so a reader of the published docs recognises them, but
nothing here is a wire format: it is never parsed from or dumped to a client directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

# A JSON value as a client sent it: for the payloads Tidings passes through to a platform
# untouched (WhatsApp `custom`, a template's extra members), which are free-form by definition.
JsonObject: TypeAlias = Mapping[str, Any]


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    VCARD = "vcard"


class SuggestionType(StrEnum):
    REPLY = "reply"
    DIAL = "dial"
    VIEW_LOCATION = "view_location"
    SHARE_LOCATION = "share_location"
    OPEN_URL = "open_url"
    OPEN_URL_IN_WEBVIEW = "open_url_in_webview"
    CREATE_CALENDAR_EVENT = "create_calendar_event"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An RCS suggestion chip: a reply, or an action the handset performs. Which optional fields
    are set depends on `type` (a dial has phone_number, an open_url has url and description…)."""

    type: SuggestionType
    text: str
    postback_data: str
    phone_number: str | None = None
    fallback_url: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    pin_label: str | None = None
    url: str | None = None
    description: str | None = None
    view_mode: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True, slots=True)
class Media:
    """One image, audio clip, video, file or vCard, by URL. `name` is a file's display name,
    `thumb_url` a video's preview image, where the channel has them."""

    url: str
    caption: str | None = None
    name: str | None = None
    thumb_url: str | None = None


@dataclass(frozen=True, slots=True)
class MediaItem:
    type: MediaKind
    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class MediaList:
    """Several media items sent as one message (MMS `content`)."""

    items: tuple[MediaItem, ...]


@dataclass(frozen=True, slots=True)
class Template:
    """A pre-approved template by name, with its positional parameters. `extra` holds whatever
    else the client put in the template object, which the platform may understand."""

    name: str
    parameters: tuple[str, ...] | None = None
    extra: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class Sticker:
    """A sticker, by URL or by the platform's id: exactly one of the two is set."""

    url: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Custom:
    """A platform's own message object, passed through as the client wrote it."""

    payload: JsonObject | None


class ReactionAction(StrEnum):
    REACT = "react"
    UNREACT = "unreact"


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji on an earlier message (named by the message's `context`), or its removal."""

    action: ReactionAction
    emoji: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    text: str
    media_url: str
    media_description: str | None = None
    media_height: str | None = None
    thumbnail_url: str | None = None
    media_force_refresh: bool | None = None
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True, slots=True)
class Carousel:
    cards: tuple[Card, ...]
    suggestions: tuple[Suggestion, ...] = ()


Content: TypeAlias = Text | Media | MediaList | Template | Sticker | Custom | Reaction | Card | Carousel


# --- What arrives: inbound messages carry these besides text, media and stickers ---------------


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    long: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The choice a user made in an interactive list or button message."""

    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """A template's quick-reply button the user pressed."""

    payload: str
    text: str


@dataclass(frozen=True, slots=True)
class OrderItem:
    product_retailer_id: str
    quantity: str
    item_price: str
    currency: str


@dataclass(frozen=True, slots=True)
class Order:
    catalog_id: str
    product_items: tuple[OrderItem, ...]
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Unsupported:
    """Something the platform delivered that the Messages API has no type for."""


InboundContent: TypeAlias = (
    Text | Media | MediaList | Sticker | Reaction | Location | Reply | Button | Order | Unsupported
)
