"""Inbound webhook bodies, field by field, against the published examples (messages-v1 §12 and
the migration guide, messages-olympus `inbound-message`, sms.yml `InboundMessage`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from tidings.domain.inbound import InboundMessage, InboundShape
from tidings.domain.message import Channel, Usage
from tidings.webhooks.inbound_payloads import (
    render_inbound,
    render_inbound_legacy_sms,
    render_inbound_v01,
    render_inbound_v1,
)

UUID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
MESSAGE = InboundMessage(
    uuid=UUID,
    account_id="abcd1234",
    channel=Channel.SMS,
    to="447700900000",
    sender="447700900001",
    text="Hello From Vonage!",
    received_at=datetime(2025, 2, 3, 12, 14, 25, 678_000, tzinfo=UTC),
    usage=Usage(currency="EUR", price=Decimal("0.033300")),
    application_id="app-1",
    network_code="12345",
)


def test_v1_matches_the_migration_guide_example() -> None:
    assert render_inbound_v1(MESSAGE) == {
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


def test_v1_counts_parts_and_leaves_out_what_is_unknown() -> None:
    long = replace(MESSAGE, text="word " * 40, network_code=None)  # 200 GSM-7 characters: 2 parts
    body = render_inbound_v1(long)
    assert body["sms"] == {"num_messages": "2", "keyword": "WORD"}
    assert "origin" not in body
    unicode = render_inbound_v1(replace(MESSAGE, text="ü" * 70 + "☕"))  # 71 UCS-2 characters
    assert unicode["sms"]["num_messages"] == "2"


def test_v1_sms_object_is_for_sms_only() -> None:
    body = render_inbound_v1(replace(MESSAGE, channel=Channel.MMS))
    assert body["channel"] == "mms"
    assert "sms" not in body


def test_v01_nested_shape() -> None:
    assert render_inbound_v01(MESSAGE) == {
        "message_uuid": UUID,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": "2025-02-03T12:14:25.678Z",
        "message": {"content": {"type": "text", "text": "Hello From Vonage!"}, "sms": {"num_messages": "1"}},
        "usage": {"currency": "EUR", "price": "0.0333"},
    }


def test_legacy_sms_shape() -> None:
    assert render_inbound_legacy_sms(MESSAGE) == {
        "msisdn": "447700900001",
        "to": "447700900000",
        "messageId": UUID,
        "text": "Hello From Vonage!",
        "type": "text",
        "keyword": "HELLO",
        "api-key": "abcd1234",
        "message-timestamp": "2025-02-03 12:14:25",
        "timestamp": str(int(MESSAGE.received_at.timestamp())),
    }


def test_legacy_type_and_keyword_edge_cases() -> None:
    assert render_inbound_legacy_sms(replace(MESSAGE, text="naïve ☕"))["type"] == "unicode"
    assert render_inbound_legacy_sms(replace(MESSAGE, text="€ {ok}"))["type"] == "text"  # GSM-7 extension
    assert render_inbound_legacy_sms(replace(MESSAGE, text=""))["keyword"] == ""
    assert render_inbound_legacy_sms(replace(MESSAGE, text="  stop\tnow"))["keyword"] == "STOP"


def test_timestamps_are_rendered_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    local = replace(MESSAGE, received_at=datetime(2025, 2, 3, 13, 14, 25, 5_000, tzinfo=paris))
    assert render_inbound_v1(local)["timestamp"] == "2025-02-03T12:14:25Z"
    assert render_inbound_v01(local)["timestamp"] == "2025-02-03T12:14:25.005Z"
    assert render_inbound_legacy_sms(local)["message-timestamp"] == "2025-02-03 12:14:25"


def test_render_gives_the_exact_compact_bytes_for_each_shape() -> None:
    for shape, render in (
        (InboundShape.V1, render_inbound_v1),
        (InboundShape.V0_1, render_inbound_v01),
        (InboundShape.LEGACY_SMS, render_inbound_legacy_sms),
    ):
        message = replace(MESSAGE, text="héllo")
        expected = json.dumps(render(message), separators=(",", ":"), ensure_ascii=False).encode()
        raw = render_inbound(message, shape)
        assert raw == expected
        assert "héllo".encode() in raw  # UTF-8, not \u escapes
