"""The simulator connector as a table of cases: a domain message in, the exact SubmitResult out.

The simulator reports its segment count and one DELIVERED receipt after the configured delay; it
quotes no price of its own (usage None), so the message keeps the price quoted at accept time,
which is the per-segment price times the same segment count. Both are checked per case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tidings.channels.base import ProviderReport, SubmitResult
from tidings.channels.simulator.connector import SimulatorConnector
from tidings.channels.simulator.mapping import SIMULATED_NETWORK_CODE
from tidings.domain.message import Channel, Message, MessageType, Status
from tidings.services.pricing import Pricing, default_price

DELAY = timedelta(seconds=1.5)
PRICE_PER_PART = Decimal("0.0070")
UUID = "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
# uuid5(NAMESPACE_URL, "tidings-simulator:" + UUID), written out so a change of derivation shows.
REF = "72ab1fd58e895d198aae58c3aea80374"


@dataclass(frozen=True)
class Case:
    label: str
    text: str | None
    segments: int
    channel: Channel = Channel.SMS
    options: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("short GSM-7", "hello", 1),
    Case("GSM-7 at 160", "a" * 160, 1),
    Case("GSM-7 at 161", "a" * 161, 2),
    Case("GSM-7 at 306 (2 x 153)", "a" * 306, 2),
    Case("GSM-7 at 307", "a" * 307, 3),
    Case("extension chars cost two septets (80 euro = 160)", "€" * 80, 1),
    Case("extension chars cost two septets (81 euro = 162)", "€" * 81, 2),
    Case("UCS-2 at 70", "ж" * 70, 1),
    Case("UCS-2 at 71", "ж" * 71, 2),
    Case("UCS-2 at 134 (2 x 67)", "ж" * 134, 2),
    Case("UCS-2 at 135", "ж" * 135, 3),
    Case("one non-GSM char makes it UCS-2", "a" * 69 + "ж", 1),
    Case("one non-GSM char makes it UCS-2, 71 long", "a" * 70 + "ж", 2),
    Case("astral chars are two UTF-16 units (35 = 70)", "\U0001f600" * 35, 1),
    Case("astral chars are two UTF-16 units (36 = 72)", "\U0001f600" * 36, 2),
    Case("encoding_type text forces GSM-7", "ж" * 160, 1, options={"encoding_type": "text"}),
    Case("encoding_type text forces GSM-7, 161", "ж" * 161, 2, options={"encoding_type": "text"}),
    Case("encoding_type unicode forces UCS-2", "a" * 71, 2, options={"encoding_type": "unicode"}),
    Case("encoding_type unicode, 70", "a" * 70, 1, options={"encoding_type": "unicode"}),
    Case("encoding_type auto", "a" * 161, 2, options={"encoding_type": "auto"}),
    Case("other channels are one part", "a" * 500, 1, channel=Channel.WHATSAPP),
    Case("SMS without text is one part", None, 1),
]


def message_of(case: Case, *, message_uuid: str = UUID) -> Message:
    return Message(
        uuid=message_uuid,
        account_id="acct0001",
        channel=case.channel,
        message_type=MessageType.TEXT if case.text is not None else MessageType.IMAGE,
        to="447700900000",
        sender="Acme",
        content={"text": case.text} if case.text is not None else {"image": {"url": "https://x.test/a.png"}},
        options=case.options,
        created_at=datetime(2025, 2, 3, 12, 0, tzinfo=UTC),
    )


@pytest.fixture
def connector() -> SimulatorConnector:
    return SimulatorConnector(delivery_delay=DELAY)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_submit(case: Case, connector: SimulatorConnector) -> None:
    message = message_of(case)
    result = await connector.submit(message)
    assert result == SubmitResult(
        provider_ref=REF,
        segments=case.segments,
        usage=None,
        reports=(
            ProviderReport(
                status=Status.DELIVERED,
                provider_ref=REF,
                after=DELAY,
                error=None,
                network_code=SIMULATED_NETWORK_CODE,
            ),
        ),
    )
    # What the message is charged at accept time agrees: price per part times the same parts.
    pricing = Pricing(None, default=default_price("EUR", str(PRICE_PER_PART)), refresh_seconds=60)  # type: ignore[arg-type]
    quote = pricing.quote(message)
    assert (quote.parts, quote.usage.currency) == (case.segments, "EUR")
    assert quote.usage.price == PRICE_PER_PART * case.segments


async def test_provider_ref_is_stable_for_a_message_and_differs_between_messages(
    connector: SimulatorConnector,
) -> None:
    first = await connector.submit(message_of(CASES[0]))
    retried = await connector.submit(message_of(CASES[3]))  # same uuid, other content
    other = await connector.submit(message_of(CASES[0], message_uuid=str(uuid.uuid4())))
    assert first.provider_ref == retried.provider_ref == REF
    assert other.provider_ref != REF
    assert other.reports[0].provider_ref == other.provider_ref


async def test_the_receipt_follows_the_configured_delay() -> None:
    instant = await SimulatorConnector(delivery_delay=timedelta(0)).submit(message_of(CASES[0]))
    slow = await SimulatorConnector(delivery_delay=timedelta(minutes=3)).submit(message_of(CASES[0]))
    assert [r.after for r in instant.reports] == [timedelta(0)]
    assert [r.after for r in slow.reports] == [timedelta(minutes=3)]


def test_the_simulator_serves_every_channel(connector: SimulatorConnector) -> None:
    assert connector.name == "simulator"
    assert connector.channels == frozenset(Channel)
