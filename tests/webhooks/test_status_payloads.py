"""Status webhook bodies: v1 (messages-v1.md §11, flat) and v0.1 (messages-olympus.yml
`MessageStatus`, nested parties), field by field, and the exact bytes that are sent."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tidings.domain.channel_registry import CHANNELS
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.events import StatusEvent
from tidings.domain.message import Channel, Status, Usage, WebhookVersion
from tidings.webhooks import v01, v1
from tidings.webhooks.rendering import render_status

MESSAGE_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
EVENT_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"
WHEN = datetime(2025, 2, 3, 12, 14, 25, 987654, tzinfo=UTC)
ERRORS = "https://developer.vonage.com/api-errors/messages"

SMS_SUBMITTED = StatusEvent(
    id=EVENT_ID,
    message_uuid=MESSAGE_UUID,
    channel=Channel.SMS,
    to="447700900000",
    sender="Acme",
    status=Status.SUBMITTED,
    timestamp=WHEN,
    client_ref="order-7",
    usage=Usage(currency="EUR", price=Decimal("0.014000")),
    segments=2,
)


# --- v1: SMS -----------------------------------------------------------------------------------


def test_v1_sms_submitted_body() -> None:
    assert v1.render_status(SMS_SUBMITTED) == {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900000",
        "from": "Acme",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "submitted",
        "channel": "sms",
        "client_ref": "order-7",
        "usage": {"currency": "EUR", "price": "0.014"},
        "sms": {"count_total": "2"},
    }


def test_v1_sms_delivered_body_names_the_destination_network() -> None:
    delivered = replace(SMS_SUBMITTED, status=Status.DELIVERED, network_code="23410")
    assert v1.render_status(delivered) == {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900000",
        "from": "Acme",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "delivered",
        "channel": "sms",
        "client_ref": "order-7",
        "usage": {"currency": "EUR", "price": "0.014"},
        "destination": {"network_code": "23410"},
        "sms": {"count_total": "2"},
    }


@pytest.mark.parametrize(
    ("segments", "network_code", "members"),
    [
        (2, "23410", {"destination": {"network_code": "23410"}, "sms": {"count_total": "2"}}),
        (1, None, {"sms": {"count_total": "1"}}),
        (None, "23410", {"destination": {"network_code": "23410"}}),
        (None, None, {}),
        (3, "", {"sms": {"count_total": "3"}}),  # an empty network code is no network code
    ],
)
def test_v1_sms_members_appear_only_when_the_event_carries_them(
    segments: int | None, network_code: str | None, members: dict[str, Any]
) -> None:
    event = replace(SMS_SUBMITTED, status=Status.DELIVERED, segments=segments, network_code=network_code)
    body = v1.render_status(event)
    assert {key: body[key] for key in ("destination", "sms") if key in body} == members
    assert isinstance(body.get("sms", {}).get("count_total", ""), str)


# --- v1: the other channels --------------------------------------------------------------------

# channel, to, from: as each channel addresses its parties
OTHER_CHANNELS = [
    (Channel.WHATSAPP, "447700900000", "447700900001"),
    (Channel.MESSENGER, "0123456789012345", "9876543210"),
    (Channel.VIBER, "447700900000", "654321"),
    (Channel.RCS, "447700900000", "TidingsAgent"),
]


@pytest.mark.parametrize(
    ("channel", "to", "sender"), OTHER_CHANNELS, ids=[c[0].value for c in OTHER_CHANNELS]
)
@pytest.mark.parametrize("status", [Status.SUBMITTED, Status.DELIVERED, Status.READ])
def test_v1_body_on_an_app_platform_has_no_sms_members(
    channel: Channel, to: str, sender: str, status: Status
) -> None:
    # As the status recorder builds it there: one message, no segments, no carrier network.
    event = replace(
        SMS_SUBMITTED,
        channel=channel,
        to=to,
        sender=sender,
        status=status,
        segments=None,
        usage=Usage(currency="EUR", price=Decimal("0.0100")),
    )
    assert v1.render_status(event) == {
        "message_uuid": MESSAGE_UUID,
        "to": to,
        "from": sender,
        "timestamp": "2025-02-03T12:14:25Z",
        "status": status.value,
        "channel": channel.value,
        "client_ref": "order-7",
        "usage": {"currency": "EUR", "price": "0.01"},
    }


def test_v1_viber_is_named_viber_service() -> None:
    event = replace(SMS_SUBMITTED, channel=Channel.VIBER, segments=None)
    assert v1.render_status(event)["channel"] == "viber_service"


def test_v1_mms_names_its_network_but_counts_no_segments() -> None:
    event = replace(
        SMS_SUBMITTED, channel=Channel.MMS, status=Status.DELIVERED, segments=None, network_code="310260"
    )
    body = v1.render_status(event)
    assert body["channel"] == "mms"
    assert body["destination"] == {"network_code": "310260"}
    assert "sms" not in body


def test_v1_read_status() -> None:
    read = replace(SMS_SUBMITTED, channel=Channel.WHATSAPP, status=Status.READ, segments=None, usage=None)
    body = v1.render_status(read)
    assert body["status"] == "read"
    assert "error" not in body and "usage" not in body


# --- v1: errors --------------------------------------------------------------------------------


def test_v1_rejected_body_carries_the_error_object() -> None:
    rejected = replace(
        SMS_SUBMITTED,
        status=Status.REJECTED,
        usage=None,
        segments=None,
        error=DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED),
    )
    assert v1.render_status(rejected) == {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900000",
        "from": "Acme",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "rejected",
        "channel": "sms",
        "client_ref": "order-7",
        "error": {
            "type": f"{ERRORS}#1360",
            "title": "1360",
            "detail": "TTL was activated - TTL was activated, no callbacks and no charge will be issued.",
            "instance": "0f0e0d0c0b0a49088706050403020100",
        },
    }


@pytest.mark.parametrize(
    ("code", "detail", "expected_detail"),
    [
        (DeliveryErrorCode.PROVIDER_ERROR, "carrier link down", "carrier link down"),
        (
            DeliveryErrorCode.ABSENT_SUBSCRIBER_PERMANENT,
            None,
            "Absent Subscriber Permanent - The recipient is no longer active.",
        ),
        (
            DeliveryErrorCode.NOT_IN_PROVIDER_NETWORK,
            None,
            "Not part of the provider network - The number or ID is not a user in the provider network.",
        ),
    ],
)
def test_v1_undeliverable_error_object(
    code: DeliveryErrorCode, detail: str | None, expected_detail: str
) -> None:
    failed = replace(
        SMS_SUBMITTED,
        id="12345678-90ab-4cde-8f01-23456789abcd",
        status=Status.UNDELIVERABLE,
        error=DeliveryError.of(code, detail),
    )
    error = v1.render_status(failed)["error"]
    assert error == {
        "type": f"{ERRORS}#{int(code)}",
        "title": str(int(code)),
        "detail": expected_detail,
        "instance": "1234567890ab4cde8f0123456789abcd",
    }
    assert isinstance(error["title"], str)
    assert re.fullmatch(r"[0-9a-f]{32}", error["instance"])


def test_v1_optional_members_are_left_out_when_unknown() -> None:
    bare = replace(SMS_SUBMITTED, client_ref=None, usage=None, segments=None)
    assert v1.render_status(bare) == {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900000",
        "from": "Acme",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "submitted",
        "channel": "sms",
    }


# --- v1: timestamps and prices -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "rendered"),
    [
        (WHEN, "2025-02-03T12:14:25Z"),
        # Another zone is converted to UTC; fractions of a second are dropped.
        (datetime(2025, 2, 3, 13, 14, 25, 1, tzinfo=timezone(timedelta(hours=1))), "2025-02-03T12:14:25Z"),
        (datetime(2024, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2))), "2025-01-01T01:30:00Z"),
        (datetime(2025, 7, 4, 0, 0, 0, tzinfo=UTC), "2025-07-04T00:00:00Z"),
    ],
)
def test_v1_timestamp_is_utc_seconds_with_a_z(moment: datetime, rendered: str) -> None:
    assert v1.iso_timestamp(moment) == rendered
    assert v1.render_status(replace(SMS_SUBMITTED, timestamp=moment))["timestamp"] == rendered


@pytest.mark.parametrize(
    ("amount", "rendered"),
    [
        (Decimal("0.0070"), "0.007"),
        (Decimal("0.014000"), "0.014"),
        (Decimal("0.0333"), "0.0333"),
        (Decimal("0.000001"), "0.000001"),  # never 1E-6
        (Decimal("10"), "10"),
        (Decimal("1E+1"), "10"),  # never in exponent notation
        (Decimal("100.00"), "100"),
        (Decimal("0E-6"), "0"),
    ],
)
def test_usage_price_is_a_plain_decimal_string(amount: Decimal, rendered: str) -> None:
    assert v1.price(amount) == rendered
    event = replace(SMS_SUBMITTED, usage=Usage(currency="GBP", price=amount))
    assert v1.render_status(event)["usage"] == {"currency": "GBP", "price": rendered}
    assert v01.render_status(event)["usage"] == {"currency": "GBP", "price": rendered}


# --- v0.1 ---------------------------------------------------------------------------------------


def test_v01_sms_body() -> None:
    delivered = replace(SMS_SUBMITTED, status=Status.DELIVERED, network_code="23410")
    # No channel, destination or sms member in v0.1: the parties carry the channel.
    assert v01.render_status(delivered) == {
        "message_uuid": MESSAGE_UUID,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "Acme"},
        "timestamp": "2025-02-03T12:14:25.987Z",
        "status": "delivered",
        "usage": {"currency": "EUR", "price": "0.014"},
        "client_ref": "order-7",
    }


# Written out, not read from the registry: v0.1's names for each channel's parties
# (messages-olympus.yml ToProperty / FromProperty and each channel's options).
V01_PARTIES = {
    Channel.SMS: (
        "447700900000",
        "Acme",
        {"type": "sms", "number": "447700900000"},
        {"type": "sms", "number": "Acme"},
    ),
    Channel.MMS: (
        "14155550100",
        "14155550101",
        {"type": "mms", "number": "14155550100"},
        {"type": "mms", "number": "14155550101"},
    ),
    Channel.WHATSAPP: (
        "447700900000",
        "447700900001",
        {"type": "whatsapp", "number": "447700900000"},
        {"type": "whatsapp", "number": "447700900001"},
    ),
    Channel.MESSENGER: (
        "0123456789012345",
        "9876543210",
        {"type": "messenger", "id": "0123456789012345"},
        {"type": "messenger", "id": "9876543210"},
    ),
    # The user has a number; the business sends from its Viber service id.
    Channel.VIBER: (
        "447700900000",
        "654321",
        {"type": "viber_service_msg", "number": "447700900000"},
        {"type": "viber_service_msg", "id": "654321"},
    ),
    Channel.RCS: (
        "447700900000",
        "TidingsAgent",
        {"type": "rcs", "number": "447700900000"},
        {"type": "rcs", "number": "TidingsAgent"},
    ),
}


def test_the_written_out_v01_parties_are_channels_of_the_registry() -> None:
    # A channel added later is covered by the property below until it gets a line of its own here.
    assert set(V01_PARTIES) <= set(CHANNELS)


@pytest.mark.parametrize("channel", list(CHANNELS), ids=[c.value for c in CHANNELS])
def test_every_channel_names_its_v01_parties_by_number_or_id(channel: Channel) -> None:
    body = v01.render_status(replace(SMS_SUBMITTED, channel=channel))
    for party in (body["to"], body["from"]):
        assert party["type"] == CHANNELS[channel].v01.type
        assert set(party) - {"type"} in ({"number"}, {"id"})


@pytest.mark.parametrize("channel", list(V01_PARTIES), ids=[c.value for c in V01_PARTIES])
def test_v01_parties_of_every_channel(channel: Channel) -> None:
    to, sender, to_party, from_party = V01_PARTIES[channel]
    event = replace(SMS_SUBMITTED, channel=channel, to=to, sender=sender, status=Status.READ, usage=None)
    assert v01.render_status(event) == {
        "message_uuid": MESSAGE_UUID,
        "to": to_party,
        "from": from_party,
        "timestamp": "2025-02-03T12:14:25.987Z",
        "status": "read",
        "client_ref": "order-7",
    }


def test_v01_party_of_a_channel_outside_the_registry_is_a_number() -> None:
    event = replace(SMS_SUBMITTED, channel=Channel.EMAIL, to="a@example.com", sender="b@example.com")
    body = v01.render_status(event)
    assert body["to"] == {"type": "email", "number": "a@example.com"}
    assert body["from"] == {"type": "email", "number": "b@example.com"}


def test_v01_error_is_a_code_and_a_reason() -> None:
    rejected = replace(
        SMS_SUBMITTED,
        status=Status.REJECTED,
        usage=None,
        error=DeliveryError.of(DeliveryErrorCode.NOT_IN_PROVIDER_NETWORK, "no such user"),
    )
    body = v01.render_status(rejected)
    assert body["error"] == {"code": 1300, "reason": "no such user"}
    assert type(body["error"]["code"]) is int  # a plain int, not the IntEnum
    assert "usage" not in body


@pytest.mark.parametrize(
    ("moment", "rendered"),
    [
        (WHEN, "2025-02-03T12:14:25.987Z"),  # milliseconds, truncated
        (
            datetime(2025, 2, 3, 13, 14, 25, 5_999, tzinfo=timezone(timedelta(hours=1))),
            "2025-02-03T12:14:25.005Z",
        ),
        (datetime(2025, 2, 3, 12, 14, 25, tzinfo=UTC), "2025-02-03T12:14:25.000Z"),
    ],
)
def test_v01_timestamp_has_milliseconds(moment: datetime, rendered: str) -> None:
    assert v01.render_status(replace(SMS_SUBMITTED, timestamp=moment))["timestamp"] == rendered


# --- the bytes ----------------------------------------------------------------------------------


def test_rendered_bytes_are_exact_compact_utf8() -> None:
    event = replace(SMS_SUBMITTED, client_ref="café ☕", status=Status.DELIVERED, network_code="23410")
    assert (
        render_status(event, WebhookVersion.V1)
        == (
            '{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee","to":"447700900000","from":"Acme",'
            '"timestamp":"2025-02-03T12:14:25Z","status":"delivered","channel":"sms","client_ref":"café ☕",'
            '"usage":{"currency":"EUR","price":"0.014"},"destination":{"network_code":"23410"},'
            '"sms":{"count_total":"2"}}'
        ).encode()
    )
    assert (
        render_status(event, WebhookVersion.V0_1)
        == (
            '{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee","to":{"type":"sms","number":"447700900000"},'
            '"from":{"type":"sms","number":"Acme"},"timestamp":"2025-02-03T12:14:25.987Z","status":"delivered",'
            '"usage":{"currency":"EUR","price":"0.014"},"client_ref":"café ☕"}'
        ).encode()
    )


@pytest.mark.parametrize("version", list(WebhookVersion))
def test_rendered_bytes_are_the_shape_s_body_and_stable(version: WebhookVersion) -> None:
    event = replace(SMS_SUBMITTED, client_ref='naïve "quoted" \\ ☕ \U0001f600')
    shape = v1.render_status if version is WebhookVersion.V1 else v01.render_status
    raw = render_status(event, version)
    assert json.loads(raw) == shape(event)
    assert "☕ \U0001f600".encode() in raw  # UTF-8, not \u escapes
    assert b": " not in raw and b", " not in raw
    assert render_status(event, version) == raw  # the same bytes every time: retries sign the same
