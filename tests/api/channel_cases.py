"""A valid v1 send request for every (channel, outbound message type) in the channel registry, with
the typed channel options it must be stored with, and each channel's notable refusals with the wire
name of every field they must blame."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.domain.channel_options import (
    ChannelOptions,
    MessengerOptions,
    RcsOptions,
    SmsOptions,
    ViberAction,
    ViberOptions,
    WhatsappOptions,
)
from tidings.domain.sms_encoding import SmsEncoding

HANDSET = "447700900000"
PARTIES: dict[str, dict[str, str]] = {
    "sms": {"to": HANDSET, "from": "Acme"},
    "mms": {"to": "14155550100", "from": "14155550101"},
    "whatsapp": {"to": HANDSET, "from": "447700900001"},
    "messenger": {"to": "1234567890123456", "from": "9876543210"},
    "viber_service": {"to": HANDSET, "from": "Tidings"},
    "rcs": {"to": HANDSET, "from": "tidings-agent"},
}
IMAGE = "https://example.com/a.png"
MEDIA = "https://example.com/media/clip.mp4"


def body(channel: str, message_type: str, **members: Any) -> dict[str, Any]:
    return {"channel": channel, "message_type": message_type, **PARTIES[channel], **members}


def card(**changes: Any) -> dict[str, Any]:
    return {"title": "Spring sale", "text": "Everything -20 %", "media_url": IMAGE, **changes}


SUGGESTIONS: list[dict[str, Any]] = [
    {"type": "reply", "text": "Yes", "postback_data": "yes"},
    {"type": "dial", "text": "Call us", "postback_data": "dial", "phone_number": "447700900111"},
    {
        "type": "view_location",
        "text": "Find us",
        "postback_data": "where",
        "latitude": "51.5072",
        "longitude": "-0.1276",
        "pin_label": "Shop",
        "fallback_url": "https://example.com/map",
    },
    {"type": "share_location", "text": "Where are you?", "postback_data": "share"},
    {
        "type": "open_url",
        "text": "Open",
        "postback_data": "open",
        "url": "https://example.com",
        "description": "Our site",
    },
    {
        "type": "open_url_in_webview",
        "text": "Open here",
        "postback_data": "webview",
        "url": "https://example.com/in",
        "description": "Inside",
        "view_mode": "TALL",
    },
    {
        "type": "create_calendar_event",
        "text": "Remind me",
        "postback_data": "cal",
        "start_time": "2025-05-01T10:00:00Z",
        "end_time": "2025-05-01T11:00:00Z",
        "title": "Sale",
        "description": "The spring sale",
    },
]


def ok(request: dict[str, Any], options: ChannelOptions | None = None, *, id: str) -> Any:
    return pytest.param(request, options, id=id)


VALID = [
    ok(
        body("sms", "text", text="hi", sms={"encoding_type": "unicode", "pool_id": "p-1"}),
        SmsOptions(encoding_type=SmsEncoding.UNICODE, pool_id="p-1"),
        id="sms-text",
    ),
    ok(body("mms", "text", text="hello MMS", ttl=300), id="mms-text"),
    ok(body("mms", "image", image={"url": IMAGE, "caption": "look"}), id="mms-image"),
    ok(body("mms", "audio", audio={"url": "https://example.com/a.mp3"}), id="mms-audio"),
    ok(body("mms", "video", video={"url": MEDIA, "caption": "v"}), id="mms-video"),
    ok(body("mms", "file", file={"url": "https://example.com/c.vcf"}), id="mms-file"),
    ok(body("mms", "vcard", vcard={"url": "https://example.com/me.vcf", "caption": "me"}), id="mms-vcard"),
    ok(
        body(
            "mms",
            "content",
            content=[{"type": "image", "url": IMAGE, "caption": "one"}, {"type": "vcard", "url": IMAGE}],
        ),
        id="mms-content",
    ),
    ok(
        body("whatsapp", "text", text="hi", context={"message_uuid": "quoted-1"}, category="marketing"),
        WhatsappOptions(category="marketing"),
        id="whatsapp-text",
    ),
    ok(body("whatsapp", "image", image={"url": IMAGE, "caption": "pic"}), id="whatsapp-image"),
    ok(body("whatsapp", "audio", audio={"url": "https://example.com/a.ogg"}), id="whatsapp-audio"),
    ok(body("whatsapp", "video", video={"url": MEDIA, "caption": "clip"}), id="whatsapp-video"),
    ok(
        body("whatsapp", "file", file={"url": "https://example.com/f.pdf", "caption": "c", "name": "f.pdf"}),
        id="whatsapp-file",
    ),
    ok(
        body(
            "whatsapp",
            "template",
            template={"name": "order_ready", "parameters": ["Ana", "42"], "components": [{"type": "body"}]},
            whatsapp={"locale": "en_GB", "policy": "deterministic"},
        ),
        WhatsappOptions(locale="en_GB", policy="deterministic"),
        id="whatsapp-template",
    ),
    ok(body("whatsapp", "sticker", sticker={"url": "https://example.com/s.webp"}), id="whatsapp-sticker-url"),
    ok(body("whatsapp", "sticker", sticker={"id": "13aaecab-2485-4255"}), id="whatsapp-sticker-id"),
    ok(
        body("whatsapp", "custom", custom={"type": "interactive", "interactive": {"type": "button"}}),
        id="whatsapp-custom",
    ),
    ok(body("whatsapp", "custom"), id="whatsapp-custom-absent"),  # the SDK allows it
    ok(
        body(
            "whatsapp",
            "reaction",
            reaction={"action": "react", "emoji": "👍"},
            context={"message_uuid": "m-1"},
        ),
        id="whatsapp-reaction",
    ),
    ok(
        body("whatsapp", "reaction", reaction={"action": "unreact"}, context={"message_uuid": "m-1"}),
        id="whatsapp-unreact",
    ),
    ok(body("messenger", "text", text="hi"), id="messenger-text"),
    ok(
        body(
            "messenger",
            "image",
            image={"url": IMAGE},
            messenger={"category": "message_tag", "tag": "POST_PURCHASE_UPDATE"},
        ),
        MessengerOptions(category="message_tag", tag="POST_PURCHASE_UPDATE"),
        id="messenger-image",
    ),
    ok(body("messenger", "audio", audio={"url": "https://example.com/a.mp3"}), id="messenger-audio"),
    ok(
        body("messenger", "video", video={"url": MEDIA}, messenger={"category": "update"}),
        MessengerOptions(category="update"),
        id="messenger-video",
    ),
    ok(body("messenger", "file", file={"url": "https://example.com/f.pdf"}), id="messenger-file"),
    ok(
        body(
            "viber_service",
            "text",
            text="hi",
            viber_service={
                "category": "transaction",
                "ttl": 600,
                "type": "string",
                "action": {"url": "https://example.com/go", "text": "Go"},
            },
        ),
        ViberOptions(
            category="transaction", ttl=600, type="string", action=ViberAction("https://example.com/go", "Go")
        ),
        id="viber-text",
    ),
    ok(body("viber_service", "image", image={"url": IMAGE, "caption": "pic"}), id="viber-image"),
    ok(
        body(
            "viber_service",
            "video",
            video={"url": MEDIA, "thumb_url": IMAGE, "caption": "clip"},
            viber_service={"duration": "60", "file_size": "12", "category": "promotion"},
        ),
        ViberOptions(category="promotion", duration="60", file_size="12"),
        id="viber-video",
    ),
    ok(
        body("viber_service", "file", file={"url": "https://example.com/f.pdf", "name": "f.pdf"}),
        id="viber-file",
    ),
    ok(
        body("rcs", "text", text="pick one", suggestions=SUGGESTIONS, rcs={"category": "promotion"}),
        RcsOptions(category="promotion"),
        id="rcs-text",
    ),
    ok(body("rcs", "image", image={"url": IMAGE}), id="rcs-image"),
    ok(body("rcs", "video", video={"url": MEDIA}), id="rcs-video"),
    ok(body("rcs", "file", file={"url": "https://example.com/f.pdf"}), id="rcs-file"),
    ok(
        body(
            "rcs",
            "card",
            card=card(
                media_description="a sale",
                media_height="TALL",
                thumbnail_url=IMAGE,
                media_force_refresh=True,
                suggestions=SUGGESTIONS[:4],
            ),
            rcs={"card_orientation": "VERTICAL"},
        ),
        RcsOptions(card_orientation="VERTICAL"),
        id="rcs-card",
    ),
    ok(
        body("rcs", "card", card=card(), rcs={"card_orientation": "HORIZONTAL", "image_alignment": "LEFT"}),
        RcsOptions(card_orientation="HORIZONTAL", image_alignment="LEFT"),
        id="rcs-card-horizontal",
    ),
    ok(
        body(
            "rcs",
            "carousel",
            carousel={"cards": [card(), card(title="Two", suggestions=SUGGESTIONS[:1])]},
            suggestions=SUGGESTIONS[:2],
            rcs={"card_width": "MEDIUM", "category": "transaction"},
        ),
        RcsOptions(category="transaction", card_width="MEDIUM"),
        id="rcs-carousel",
    ),
    ok(body("rcs", "custom", custom={"contentMessage": {"text": "raw"}}), id="rcs-custom"),
]


def bad(request: dict[str, Any], *names: str, id: str) -> Any:
    return pytest.param(request, sorted(names), id=id)


TOO_LONG_URL = "https://example.com/" + "a" * 2030
INVALID = [
    # MMS
    bad(body("mms", "text", text="x", to="+14155550100"), "to", id="mms-to-not-e164"),
    bad(body("mms", "image", image={"caption": "no url"}), "image.url", id="mms-image-url-required"),
    bad(
        body("mms", "image", image={"url": "ftp://example.com/a.png"}), "image.url", id="mms-image-url-scheme"
    ),
    bad(body("mms", "video", video={"url": MEDIA, "caption": ""}), "video.caption", id="mms-caption-empty"),
    bad(
        body("mms", "vcard", vcard={"url": IMAGE, "caption": "c" * 3001}),
        "vcard.caption",
        id="mms-caption-3001",
    ),
    bad(body("mms", "content", content=[]), "content", id="mms-content-empty"),
    bad(
        body("mms", "content", content=[{"type": "sticker", "url": IMAGE}, {"type": "image", "url": "nope"}]),
        "content.0.type",
        "content.1.url",
        id="mms-content-items",
    ),
    bad(body("mms", "text", text="x", ttl=299, **{"from": ""}), "ttl", "from", id="mms-ttl-and-from"),
    # WhatsApp
    bad(body("whatsapp", "text", text="x" * 4097), "text", id="whatsapp-text-4097"),
    bad(body("whatsapp", "text", text="x", to=""), "to", id="whatsapp-to-empty"),
    bad(
        body("whatsapp", "image", image={"url": IMAGE, "caption": "c" * 3001}),
        "image.caption",
        id="whatsapp-caption",
    ),
    bad(body("whatsapp", "audio", audio={"url": "http://ab"}), "audio.url", id="whatsapp-audio-url-short"),
    bad(body("whatsapp", "audio", audio={"url": TOO_LONG_URL}), "audio.url", id="whatsapp-audio-url-long"),
    bad(
        body("whatsapp", "file", file={"url": IMAGE, "name": "n" * 256}), "file.name", id="whatsapp-file-name"
    ),
    bad(
        body("whatsapp", "template", template={"parameters": [1]}),
        "template.name",
        "template.parameters.0",
        id="whatsapp-template-members",
    ),
    bad(
        body(
            "whatsapp",
            "template",
            template={"name": "t"},
            whatsapp={"locale": "english", "policy": "fallback"},
        ),
        "whatsapp.locale",
        "whatsapp.policy",
        id="whatsapp-template-locale-policy",
    ),
    bad(body("whatsapp", "sticker", sticker={}), "sticker", id="whatsapp-sticker-neither"),
    bad(
        body("whatsapp", "sticker", sticker={"url": IMAGE, "id": "s-1"}),
        "sticker",
        id="whatsapp-sticker-both",
    ),
    bad(
        body("whatsapp", "reaction", reaction={"action": "react", "emoji": "👍"}),
        "context",
        id="whatsapp-reaction-context",
    ),
    bad(
        body("whatsapp", "reaction", reaction={"action": "react"}, context={"message_uuid": "m"}),
        "reaction.emoji",
        id="whatsapp-reaction-emoji",
    ),
    bad(
        body("whatsapp", "reaction", reaction={"action": "love"}, context={"message_uuid": ""}),
        "reaction.action",
        "context.message_uuid",
        id="whatsapp-reaction-action-and-context",
    ),
    bad(body("whatsapp", "custom", custom="interactive"), "custom", id="whatsapp-custom-not-object"),
    # Messenger
    bad(body("messenger", "text", text="x" * 641), "text", id="messenger-text-641"),
    bad(
        body("messenger", "text", text="x", messenger={"category": "message_tag"}),
        "messenger.tag",
        id="messenger-tag-required",
    ),
    bad(
        body("messenger", "text", text="x", messenger={"category": "promo"}),
        "messenger.category",
        id="messenger-category",
    ),
    bad(
        body("messenger", "image", image={"url": "example.com/a.png"}, to="x" * 51),
        "image.url",
        "to",
        id="messenger-url-and-to",
    ),
    # Viber
    bad(body("viber_service", "text", text="x", to="+447700900000"), "to", id="viber-to-not-e164"),
    bad(body("viber_service", "text", text="x" * 1001), "text", id="viber-text-1001"),
    bad(
        body(
            "viber_service",
            "text",
            text="x",
            viber_service={"category": "marketing", "ttl": 29, "type": "html"},
        ),
        "viber_service.category",
        "viber_service.ttl",
        "viber_service.type",
        id="viber-settings-enums",
    ),
    bad(
        body(
            "viber_service",
            "image",
            image={"url": IMAGE},
            viber_service={"action": {"url": IMAGE, "text": "x" * 31}},
        ),
        "viber_service.action.text",
        id="viber-action-text",
    ),
    bad(
        body("viber_service", "video", video={"url": MEDIA, "thumb_url": IMAGE}),
        "viber_service",
        id="viber-video-settings-required",
    ),
    bad(
        body(
            "viber_service", "video", video={"url": MEDIA}, viber_service={"duration": 60, "file_size": "201"}
        ),
        "video.thumb_url",
        "viber_service.duration",
        "viber_service.file_size",
        id="viber-video-members",
    ),
    bad(
        body(
            "viber_service",
            "video",
            video={"url": MEDIA, "thumb_url": "https://example.com/" + "t" * 990},
            viber_service={"duration": "0", "file_size": "1"},
        ),
        "video.thumb_url",
        "viber_service.duration",
        id="viber-video-limits",
    ),
    bad(
        body("viber_service", "file", file={"url": IMAGE, "name": "n" * 26}),
        "file.name",
        id="viber-file-name",
    ),
    # RCS
    bad(
        body("rcs", "text", text="x", to="+447700900000", **{"from": "bad agent!"}),
        "to",
        "from",
        id="rcs-to-and-from",
    ),
    bad(
        body("rcs", "text", text="x", ttl=259201, rcs={"category": "spam"}),
        "ttl",
        "rcs.category",
        id="rcs-ttl-category",
    ),
    bad(body("rcs", "text", text="x", suggestions=[]), "suggestions", id="rcs-suggestions-empty"),
    bad(
        body("rcs", "text", text="x", suggestions=SUGGESTIONS[:1] * 12),
        "suggestions",
        id="rcs-suggestions-12",
    ),
    bad(
        body("rcs", "text", text="x", suggestions=[{"type": "teleport", "text": "a", "postback_data": "b"}]),
        "suggestions.0.type",
        id="rcs-suggestion-kind",
    ),
    bad(
        body(
            "rcs",
            "text",
            text="x",
            suggestions=[
                {**SUGGESTIONS[1], "phone_number": "+447700900111"},
                {**SUGGESTIONS[2], "latitude": "north"},
                {k: v for k, v in SUGGESTIONS[4].items() if k != "description"},
                {**SUGGESTIONS[5], "view_mode": "WIDE"},
                {**SUGGESTIONS[0], "text": "t" * 26},
            ],
        ),
        "suggestions.0.phone_number",
        "suggestions.1.latitude",
        "suggestions.2.description",
        "suggestions.3.view_mode",
        "suggestions.4.text",
        id="rcs-suggestion-members",
    ),
    bad(body("rcs", "image", image={"url": "https:/x"}), "image.url", id="rcs-image-url"),
    bad(
        body("rcs", "card", card=card(title="t" * 201, media_url="nope", suggestions=SUGGESTIONS[:5])),
        "card.title",
        "card.media_url",
        "card.suggestions",
        id="rcs-card-members",
    ),
    bad(
        body("rcs", "card", card=card(), rcs={"card_orientation": "VERTICAL"}),
        "card.media_height",
        id="rcs-card-height-when-vertical",
    ),
    bad(
        body("rcs", "card", card=card(), to="+447700900000", rcs={"card_orientation": "VERTICAL"}),
        "card.media_height",
        "to",
        id="rcs-card-height-and-to",
    ),
    bad(
        body("rcs", "card", card=card(), rcs={"card_orientation": "HORIZONTAL"}),
        "rcs.image_alignment",
        id="rcs-card-alignment-when-horizontal",
    ),
    bad(
        body("rcs", "card", card=card(), rcs={"card_orientation": "DIAGONAL"}),
        "rcs.card_orientation",
        id="rcs-card-orientation",
    ),
    bad(
        body("rcs", "carousel", carousel={"cards": [card()]}),
        "carousel.cards",
        "rcs",
        id="rcs-carousel-one-card-no-width",
    ),
    bad(
        body("rcs", "carousel", carousel={"cards": [card()] * 11}, rcs={"card_width": "LARGE"}),
        "carousel.cards",
        "rcs.card_width",
        id="rcs-carousel-eleven-cards",
    ),
    bad(
        body("rcs", "carousel", carousel={"cards": [card(), card(text="")]}, rcs={"card_width": "SMALL"}),
        "carousel.cards.1.text",
        id="rcs-carousel-card-member",
    ),
    bad(body("rcs", "custom"), "custom", id="rcs-custom-required"),
]

# A type a channel does not have, though another channel may.
WRONG_TYPE = [
    ("sms", "image"),
    ("mms", "template"),
    ("whatsapp", "card"),
    ("whatsapp", "location"),
    ("messenger", "template"),
    ("messenger", "sticker"),
    ("viber_service", "audio"),
    ("rcs", "audio"),
    ("rcs", "reaction"),
    ("rcs", "unsupported"),
]
