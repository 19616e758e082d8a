"""Inbound webhook bodies, field by field: Messages API v1 (messages-v1.md §12 and the migration
guide's example), v0.1 (messages-olympus.yml `inbound-message`) and the SMS API's (sms.yml
`InboundMessage`), and the exact bytes of each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tidings.domain.channel_registry import CHANNELS
from tidings.domain.content import (
    Button,
    InboundContent,
    Location,
    Media,
    MediaItem,
    MediaKind,
    MediaList,
    Order,
    OrderItem,
    Reaction,
    ReactionAction,
    Reply,
    Sticker,
    Text,
    Unsupported,
)
from tidings.domain.inbound import InboundContext, InboundMessage, InboundShape
from tidings.domain.message import Channel, MessageType, Usage
from tidings.webhooks import legacy_sms, v01, v1
from tidings.webhooks.rendering import render_inbound

UUID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
RECEIVED_AT = datetime(2025, 2, 3, 12, 14, 25, 678_000, tzinfo=UTC)
SMS = InboundMessage(
    uuid=UUID,
    account_id="abcd1234",
    channel=Channel.SMS,
    to="447700900000",
    sender="447700900001",
    message_type=MessageType.TEXT,
    content=Text("Hello From Vonage!"),
    received_at=RECEIVED_AT,
    usage=Usage(currency="EUR", price=Decimal("0.033300")),
    application_id="app-1",
    network_code="12345",
    segmented=True,
)
WHATSAPP = replace(
    SMS,
    channel=Channel.WHATSAPP,
    to="447700900000",
    sender="447700900002",
    usage=Usage(currency="EUR", price=Decimal("0")),
    network_code=None,
    segmented=False,
)


def sms_text(text: str) -> InboundMessage:
    return replace(SMS, content=Text(text))


# --- v1: SMS -----------------------------------------------------------------------------------


def test_v1_sms_matches_the_migration_guide_example() -> None:
    assert v1.render_inbound(SMS) == {
        "channel": "sms",
        "message_uuid": UUID,
        "to": "447700900000",
        "from": "447700900001",
        "timestamp": "2025-02-03T12:14:25Z",
        "message_type": "text",
        "text": "Hello From Vonage!",
        "sms": {"num_messages": "1", "keyword": "HELLO"},
        "usage": {"currency": "EUR", "price": "0.0333"},
        "origin": {"network_code": "12345"},
    }


@pytest.mark.parametrize(
    ("text", "parts", "keyword"),
    [
        ("x" * 160, "1", "X" * 160),  # GSM-7: one part holds 160
        ("word " * 40, "2", "WORD"),  # 200 GSM-7 characters
        ("x" * 161, "2", "X" * 161),
        ("{" * 80, "1", "{" * 80),  # an extension character takes two septets: 160 in all
        ("{" * 81, "2", "{" * 81),
        ("ü" * 70, "1", "Ü" * 70),  # UCS-2: one part holds 70
        ("ü" * 70 + "☕", "2", "Ü" * 70 + "☕"),
        ("", "1", ""),
    ],
)
def test_v1_sms_counts_parts_and_finds_the_keyword(text: str, parts: str, keyword: str) -> None:
    body = v1.render_inbound(sms_text(text))
    assert body["sms"] == {"num_messages": parts, "keyword": keyword}
    assert body["text"] == text


def test_v1_sms_without_a_network_code_has_no_origin() -> None:
    body = v1.render_inbound(replace(SMS, network_code=None))
    assert "origin" not in body
    assert body["sms"] == {"num_messages": "1", "keyword": "HELLO"}


@pytest.mark.parametrize(
    "channel", [Channel.MMS, Channel.WHATSAPP, Channel.MESSENGER, Channel.VIBER, Channel.RCS]
)
def test_v1_sms_object_only_for_a_segmented_text(channel: Channel) -> None:
    body = v1.render_inbound(replace(SMS, channel=channel, segmented=False))
    assert body["channel"] == channel.value
    assert body["text"] == "Hello From Vonage!"
    assert "sms" not in body


# --- v1: every inbound content type ------------------------------------------------------------

IMAGE_URL = "https://media.example.com/cat.jpg"

# id, channel, message type, content, the members v1 renders for it
CONTENTS: list[tuple[str, Channel, MessageType, InboundContent, dict[str, Any]]] = [
    ("text", Channel.WHATSAPP, MessageType.TEXT, Text("Hi there"), {"text": "Hi there"}),
    (
        "image with caption",
        Channel.WHATSAPP,
        MessageType.IMAGE,
        Media(IMAGE_URL, caption="Oliver"),
        {"image": {"url": IMAGE_URL, "caption": "Oliver"}},
    ),
    ("image", Channel.MESSENGER, MessageType.IMAGE, Media(IMAGE_URL), {"image": {"url": IMAGE_URL}}),
    (
        "audio",
        Channel.WHATSAPP,
        MessageType.AUDIO,
        Media("https://media.example.com/a.ogg"),
        {"audio": {"url": "https://media.example.com/a.ogg"}},
    ),
    (
        "video",
        Channel.VIBER,
        MessageType.VIDEO,
        Media("https://media.example.com/v.mp4", caption="Look"),
        {"video": {"url": "https://media.example.com/v.mp4", "caption": "Look"}},
    ),
    (
        "file",
        Channel.WHATSAPP,
        MessageType.FILE,
        Media("https://media.example.com/f.pdf", caption="Invoice", name="invoice.pdf"),
        {"file": {"url": "https://media.example.com/f.pdf", "caption": "Invoice", "name": "invoice.pdf"}},
    ),
    (
        "vcard",
        Channel.MMS,
        MessageType.VCARD,
        Media("https://media.example.com/c.vcf", name="Jane Doe"),
        {"vcard": {"url": "https://media.example.com/c.vcf", "name": "Jane Doe"}},
    ),
    (
        "mms content",
        Channel.MMS,
        MessageType.CONTENT,
        MediaList(
            (
                MediaItem(MediaKind.IMAGE, IMAGE_URL, caption="front"),
                MediaItem(MediaKind.VCARD, "https://media.example.com/c.vcf"),
            )
        ),
        {
            "content": [
                {"type": "image", "url": IMAGE_URL, "caption": "front"},
                {"type": "vcard", "url": "https://media.example.com/c.vcf"},
            ]
        },
    ),
    (
        "sticker",
        Channel.WHATSAPP,
        MessageType.STICKER,
        Sticker(url="https://media.example.com/s.webp"),
        {"sticker": {"url": "https://media.example.com/s.webp"}},
    ),
    (
        "location",
        Channel.WHATSAPP,
        MessageType.LOCATION,
        Location(lat=37.758056, long=-122.425332, name="Facebook HQ", address="1 Hacker Way"),
        {
            "location": {
                "lat": 37.758056,
                "long": -122.425332,
                "name": "Facebook HQ",
                "address": "1 Hacker Way",
            }
        },
    ),
    (
        "location without a name",
        Channel.RCS,
        MessageType.LOCATION,
        Location(lat=51.5, long=-0.12),
        {"location": {"lat": 51.5, "long": -0.12}},
    ),
    (
        "reply",
        Channel.WHATSAPP,
        MessageType.REPLY,
        Reply(id="row-2", title="Tuesday", description="10:00 to 12:00"),
        {"reply": {"id": "row-2", "title": "Tuesday", "description": "10:00 to 12:00"}},
    ),
    (
        "reply without a description",
        Channel.RCS,
        MessageType.REPLY,
        Reply(id="yes", title="Yes"),
        {"reply": {"id": "yes", "title": "Yes"}},
    ),
    (
        "button",
        Channel.WHATSAPP,
        MessageType.BUTTON,
        Button(payload="STOP-PROMOS", text="Stop promotions"),
        {"button": {"payload": "STOP-PROMOS", "text": "Stop promotions"}},
    ),
    (
        "order",
        Channel.WHATSAPP,
        MessageType.ORDER,
        Order(
            catalog_id="cat-1",
            product_items=(
                OrderItem("sku-1", "2", "9.99", "EUR"),
                OrderItem("sku-2", "1", "0.50", "EUR"),
            ),
            text="Deliver after 6",
        ),
        {
            "order": {
                "catalog_id": "cat-1",
                "product_items": [
                    {
                        "product_retailer_id": "sku-1",
                        "quantity": "2",
                        "item_price": "9.99",
                        "currency": "EUR",
                    },
                    {
                        "product_retailer_id": "sku-2",
                        "quantity": "1",
                        "item_price": "0.50",
                        "currency": "EUR",
                    },
                ],
                "text": "Deliver after 6",
            }
        },
    ),
    (
        "reaction",
        Channel.WHATSAPP,
        MessageType.REACTION,
        Reaction(ReactionAction.REACT, "👍"),
        {"reaction": {"action": "react", "emoji": "👍"}},
    ),
    (
        "reaction removed",
        Channel.WHATSAPP,
        MessageType.REACTION,
        Reaction(ReactionAction.UNREACT),
        {"reaction": {"action": "unreact"}},
    ),
    ("unsupported", Channel.WHATSAPP, MessageType.UNSUPPORTED, Unsupported(), {}),
]


def test_every_inbound_message_type_of_the_registry_has_a_case() -> None:
    inbound = {message_type for spec in CHANNELS.values() for message_type in spec.inbound}
    assert inbound <= {case[2] for case in CONTENTS}
    for _, channel, message_type, _, _ in CONTENTS:
        assert message_type in CHANNELS[channel].inbound, (channel, message_type)


@pytest.mark.parametrize(
    ("channel", "message_type", "content", "members"),
    [case[1:] for case in CONTENTS],
    ids=[case[0] for case in CONTENTS],
)
def test_v1_content_of_every_inbound_type(
    channel: Channel, message_type: MessageType, content: InboundContent, members: dict[str, Any]
) -> None:
    message = replace(WHATSAPP, channel=channel, message_type=message_type, content=content)
    body = v1.render_inbound(message)
    assert body == {
        "channel": channel.value,
        "message_uuid": UUID,
        "to": "447700900000",
        "from": "447700900002",
        "timestamp": "2025-02-03T12:14:25Z",
        "message_type": message_type.value,
        **members,
        "usage": {"currency": "EUR", "price": "0"},
    }
    # Through JSON, as the receiver gets it: enums become their plain values.
    assert json.loads(render_inbound(message, InboundShape.V1)) == body
    if message_type is MessageType.UNSUPPORTED:
        assert "unsupported" not in body


def test_v1_members_come_in_the_migration_guide_s_order() -> None:
    message = replace(
        SMS,
        profile_name="Jane",
        context=InboundContext(
            message_uuid="bbbbbbbb-cccc-4ddd-8eee-ffffffffffff", message_from="447700900000"
        ),
    )
    assert list(v1.render_inbound(message)) == [
        "channel",
        "message_uuid",
        "to",
        "from",
        "timestamp",
        "message_type",
        "text",
        "sms",
        "usage",
        "origin",
        "profile",
        "context",
    ]


# --- v1: who sent it, and what it answers ------------------------------------------------------


def test_v1_whatsapp_profile_and_context() -> None:
    message = replace(
        WHATSAPP,
        profile_name="Jane Doe",
        context=InboundContext(
            message_uuid="bbbbbbbb-cccc-4ddd-8eee-ffffffffffff", message_from="447700900000"
        ),
    )
    assert v1.render_inbound(message) == {
        "channel": "whatsapp",
        "message_uuid": UUID,
        "to": "447700900000",
        "from": "447700900002",
        "timestamp": "2025-02-03T12:14:25Z",
        "message_type": "text",
        "text": "Hello From Vonage!",
        "usage": {"currency": "EUR", "price": "0"},
        "profile": {"name": "Jane Doe"},
        "context": {"message_uuid": "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff", "message_from": "447700900000"},
    }


def test_v1_context_leaves_out_what_it_does_not_know() -> None:
    reaction = replace(
        WHATSAPP,
        message_type=MessageType.REACTION,
        content=Reaction(ReactionAction.REACT, "❤️"),
        context=InboundContext(message_uuid="bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"),
    )
    body = v1.render_inbound(reaction)
    assert body["context"] == {"message_uuid": "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"}
    assert "profile" not in body


def test_v1_without_profile_or_context_has_neither() -> None:
    body = v1.render_inbound(replace(WHATSAPP, profile_name=None, context=None))
    assert "profile" not in body and "context" not in body and "origin" not in body


def test_v1_origin_network_code_on_mms() -> None:
    mms = replace(WHATSAPP, channel=Channel.MMS, network_code="310260")
    assert v1.render_inbound(mms)["origin"] == {"network_code": "310260"}


# --- v0.1 ---------------------------------------------------------------------------------------


def test_v01_sms_nested_shape() -> None:
    assert v01.render_inbound(SMS) == {
        "message_uuid": UUID,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": "2025-02-03T12:14:25.678Z",
        "message": {"content": {"type": "text", "text": "Hello From Vonage!"}, "sms": {"num_messages": "1"}},
        "usage": {"currency": "EUR", "price": "0.0333"},
    }


def test_v01_counts_the_parts_of_a_long_sms() -> None:
    assert v01.render_inbound(sms_text("word " * 40))["message"]["sms"] == {"num_messages": "2"}


def test_v01_whatsapp_image_nests_its_object_in_the_content() -> None:
    message = replace(
        WHATSAPP,
        message_type=MessageType.IMAGE,
        content=Media(IMAGE_URL, caption="Oliver"),
        profile_name="Jane",  # v1 only
        context=InboundContext(message_uuid="bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"),  # v1 only
        network_code="23410",  # v1 only
    )
    assert v01.render_inbound(message) == {
        "message_uuid": UUID,
        "to": {"type": "whatsapp", "number": "447700900000"},
        "from": {"type": "whatsapp", "number": "447700900002"},
        "timestamp": "2025-02-03T12:14:25.678Z",
        "message": {"content": {"type": "image", "image": {"url": IMAGE_URL, "caption": "Oliver"}}},
        "usage": {"currency": "EUR", "price": "0"},
    }


@pytest.mark.parametrize(
    ("channel", "business", "user", "to_party", "from_party"),
    [
        # An inbound message goes to the business (our address) from the user.
        (
            Channel.VIBER,
            "654321",
            "447700900002",
            {"type": "viber_service_msg", "id": "654321"},
            {"type": "viber_service_msg", "number": "447700900002"},
        ),
        (
            Channel.MESSENGER,
            "1234567890",
            "0123456789012345",
            {"type": "messenger", "id": "1234567890"},
            {"type": "messenger", "id": "0123456789012345"},
        ),
        (
            Channel.MMS,
            "14155550100",
            "14155550101",
            {"type": "mms", "number": "14155550100"},
            {"type": "mms", "number": "14155550101"},
        ),
        (
            Channel.RCS,
            "TidingsAgent",
            "447700900002",
            {"type": "rcs", "number": "TidingsAgent"},
            {"type": "rcs", "number": "447700900002"},
        ),
    ],
)
def test_v01_parties(
    channel: Channel, business: str, user: str, to_party: dict[str, str], from_party: dict[str, str]
) -> None:
    body = v01.render_inbound(replace(WHATSAPP, channel=channel, to=business, sender=user))
    assert (body["to"], body["from"]) == (to_party, from_party)
    assert body["message"] == {"content": {"type": "text", "text": "Hello From Vonage!"}}


def test_v01_unsupported_content_is_its_type_alone() -> None:
    message = replace(WHATSAPP, message_type=MessageType.UNSUPPORTED, content=Unsupported())
    assert v01.render_inbound(message)["message"] == {"content": {"type": "unsupported"}}


def test_v01_mms_content_list() -> None:
    message = replace(
        WHATSAPP,
        channel=Channel.MMS,
        message_type=MessageType.CONTENT,
        content=MediaList((MediaItem(MediaKind.IMAGE, IMAGE_URL),)),
    )
    assert v01.render_inbound(message)["message"] == {
        "content": {"type": "content", "content": [{"type": "image", "url": IMAGE_URL}]}
    }


def test_v01_location_is_spelled_out_in_strings() -> None:
    # messages-olympus `locationMessageWhatsApp`: longitude and latitude, as strings.
    message = replace(
        WHATSAPP,
        message_type=MessageType.LOCATION,
        content=Location(lat=37.758056, long=-122.425332, name="Facebook HQ", address="1 Hacker Way"),
    )
    assert v01.render_inbound(message)["message"] == {
        "content": {
            "type": "location",
            "location": {
                "longitude": "-122.425332",
                "latitude": "37.758056",
                "name": "Facebook HQ",
                "address": "1 Hacker Way",
            },
        }
    }
    bare = replace(message, content=Location(lat=51.5, long=-0.12))
    assert v01.render_inbound(bare)["message"]["content"]["location"] == {
        "longitude": "-0.12",
        "latitude": "51.5",
    }


# --- the SMS API's shape -----------------------------------------------------------------------


def test_legacy_sms_shape() -> None:
    assert legacy_sms.render_inbound(SMS) == {
        "msisdn": "447700900001",
        "to": "447700900000",
        "messageId": UUID,
        "text": "Hello From Vonage!",
        "type": "text",
        "keyword": "HELLO",
        "api-key": "abcd1234",
        "message-timestamp": "2025-02-03 12:14:25",
        "timestamp": "1738584865",
    }


@pytest.mark.parametrize(
    ("text", "kind", "keyword"),
    [
        ("naïve ☕", "unicode", "NAÏVE"),
        ("€ {ok}", "text", "€"),  # GSM-7 extension characters are still text
        ("Ünïcödé", "unicode", "ÜNÏCÖDÉ"),
        ("Ü is in GSM-7", "text", "Ü"),
        ("", "text", ""),
        ("   ", "text", ""),
        ("  stop\tnow", "unicode", "STOP"),  # a tab is not in GSM-7
        ("stop\nall", "text", "STOP"),
    ],
)
def test_legacy_type_and_keyword_edge_cases(text: str, kind: str, keyword: str) -> None:
    body = legacy_sms.render_inbound(sms_text(text))
    assert (body["type"], body["keyword"], body["text"]) == (kind, keyword, text)


def test_legacy_text_of_a_message_without_text_is_empty() -> None:
    body = legacy_sms.render_inbound(
        replace(SMS, message_type=MessageType.UNSUPPORTED, content=Unsupported())
    )
    assert (body["text"], body["keyword"], body["type"]) == ("", "", "text")


def test_timestamps_are_rendered_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    local = replace(SMS, received_at=datetime(2025, 2, 3, 13, 14, 25, 5_000, tzinfo=paris))
    assert v1.render_inbound(local)["timestamp"] == "2025-02-03T12:14:25Z"
    assert v01.render_inbound(local)["timestamp"] == "2025-02-03T12:14:25.005Z"
    legacy = legacy_sms.render_inbound(local)
    assert (legacy["message-timestamp"], legacy["timestamp"]) == ("2025-02-03 12:14:25", "1738584865")


# --- the bytes ----------------------------------------------------------------------------------


def test_render_gives_the_exact_compact_utf8_bytes_of_each_shape() -> None:
    message = replace(sms_text("héllo ☕"), network_code=None)
    assert (
        render_inbound(message, InboundShape.V1)
        == (
            '{"channel":"sms","message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900000",'
            '"from":"447700900001","timestamp":"2025-02-03T12:14:25Z","message_type":"text","text":"héllo ☕",'
            '"sms":{"num_messages":"1","keyword":"HÉLLO"},"usage":{"currency":"EUR","price":"0.0333"}}'
        ).encode()
    )
    assert (
        render_inbound(message, InboundShape.V0_1)
        == (
            '{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":{"type":"sms","number":"447700900000"},'
            '"from":{"type":"sms","number":"447700900001"},"timestamp":"2025-02-03T12:14:25.678Z",'
            '"message":{"content":{"type":"text","text":"héllo ☕"},"sms":{"num_messages":"1"}},'
            '"usage":{"currency":"EUR","price":"0.0333"}}'
        ).encode()
    )
    assert (
        render_inbound(message, InboundShape.LEGACY_SMS)
        == (
            '{"msisdn":"447700900001","to":"447700900000","messageId":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",'
            '"text":"héllo ☕","type":"unicode","keyword":"HÉLLO","api-key":"abcd1234",'
            '"message-timestamp":"2025-02-03 12:14:25","timestamp":"1738584865"}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("shape", "render"),
    [
        (InboundShape.V1, v1.render_inbound),
        (InboundShape.V0_1, v01.render_inbound),
        (InboundShape.LEGACY_SMS, legacy_sms.render_inbound),
    ],
)
def test_render_bytes_are_the_shape_s_body(shape: InboundShape, render: Any) -> None:
    message = sms_text('a "quoted" \\ line\nand an emoji \U0001f600')
    raw = render_inbound(message, shape)
    assert json.loads(raw) == render(message)
    assert "\U0001f600".encode() in raw
    assert b": " not in raw and b", " not in raw
