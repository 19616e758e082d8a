"""The v1 status webhook body (messages-v1.md §11), field by field."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.events import StatusEvent
from tidings.domain.message import Channel, Status, Usage, WebhookVersion
from tidings.webhooks.status_payloads import iso_timestamp, render_status, render_status_v1

MESSAGE_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
EVENT_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"
WHEN = datetime(2025, 2, 3, 12, 14, 25, 987654, tzinfo=UTC)

SUBMITTED = StatusEvent(
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


def test_submitted_body() -> None:
    assert render_status_v1(SUBMITTED) == {
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


def test_delivered_body_names_the_destination_network() -> None:
    delivered = replace(SUBMITTED, status=Status.DELIVERED, network_code="23410")
    body = render_status_v1(delivered)
    assert body["status"] == "delivered"
    assert body["destination"] == {"network_code": "23410"}
    assert body["sms"] == {"count_total": "2"}
    assert "error" not in body


def test_rejected_body_carries_the_error_object() -> None:
    rejected = replace(
        SUBMITTED,
        status=Status.REJECTED,
        usage=None,
        segments=None,
        error=DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED),
    )
    assert render_status_v1(rejected) == {
        "message_uuid": MESSAGE_UUID,
        "to": "447700900000",
        "from": "Acme",
        "timestamp": "2025-02-03T12:14:25Z",
        "status": "rejected",
        "channel": "sms",
        "client_ref": "order-7",
        "error": {
            "type": "https://developer.vonage.com/api-errors/messages#1360",
            "title": "1360",
            "detail": "TTL was activated - TTL was activated, no callbacks and no charge will be issued.",
            "instance": EVENT_ID.replace("-", ""),
        },
    }


def test_an_error_keeps_a_detail_given_by_the_provider() -> None:
    failed = replace(
        SUBMITTED,
        status=Status.UNDELIVERABLE,
        error=DeliveryError.of(DeliveryErrorCode.PROVIDER_ERROR, "carrier link down"),
    )
    error = render_status_v1(failed)["error"]
    assert error["title"] == "1331" and isinstance(error["title"], str)
    assert error["type"].endswith("/messages#1331")
    assert error["detail"] == "carrier link down"


def test_client_ref_is_omitted_when_none() -> None:
    body = render_status_v1(replace(SUBMITTED, client_ref=None))
    assert "client_ref" not in body


def test_usage_and_sms_are_omitted_when_unknown() -> None:
    body = render_status_v1(replace(SUBMITTED, usage=None, segments=None))
    assert "usage" not in body and "sms" not in body and "destination" not in body


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
def test_timestamp_is_utc_seconds_with_a_z(moment: datetime, rendered: str) -> None:
    assert iso_timestamp(moment) == rendered
    stamp = render_status_v1(replace(SUBMITTED, timestamp=moment))["timestamp"]
    assert stamp == rendered
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", stamp)


@pytest.mark.parametrize(
    ("price", "rendered"),
    [
        (Decimal("0.0070"), "0.007"),
        (Decimal("0.014000"), "0.014"),
        (Decimal("0.0333"), "0.0333"),
        (Decimal("10"), "10"),
        (Decimal("1E+1"), "10"),  # never in exponent notation
        (Decimal("0E-6"), "0"),
    ],
)
def test_usage_price_is_a_plain_decimal_string(price: Decimal, rendered: str) -> None:
    usage = render_status_v1(replace(SUBMITTED, usage=Usage(currency="GBP", price=price)))["usage"]
    assert usage == {"currency": "GBP", "price": rendered}
    assert isinstance(usage["price"], str)


def test_sms_only_fields_stay_off_other_channels() -> None:
    whatsapp = replace(SUBMITTED, channel=Channel.WHATSAPP, network_code="23410")
    body = render_status_v1(whatsapp)
    assert body["channel"] == "whatsapp"
    assert "sms" not in body and "destination" not in body
    assert body["usage"] == {"currency": "EUR", "price": "0.014"}


def test_rendered_bytes_are_compact_utf8_json_of_the_body() -> None:
    event = replace(SUBMITTED, client_ref="café ☕")
    raw = render_status(event, WebhookVersion.V1)
    assert raw == json.dumps(render_status_v1(event), separators=(",", ":"), ensure_ascii=False).encode()
    assert "café ☕".encode() in raw  # not \\u-escaped
    assert b" " not in raw.replace("café ☕".encode(), b"")
    assert render_status(event, WebhookVersion.V1) == raw  # stable: retries sign the same bytes
