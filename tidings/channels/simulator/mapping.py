"""How the simulated network treats a message: what it costs and which statuses follow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tidings.channels.base import ProviderReport, SubmitResult
from tidings.domain.message import Channel, Message, Status, Usage
from tidings.domain.sms_encoding import SmsEncoding, segment

SIMULATED_NETWORK_CODE = "99999"


def segments_for(message: Message) -> int:
    if message.channel is Channel.SMS and message.text is not None:
        encoding = SmsEncoding(message.options.get("encoding_type", SmsEncoding.AUTO.value))
        return segment(message.text, encoding).segments
    return 1


def simulated_result(
    message: Message, *, provider_ref: str, delay: timedelta, currency: str, price_per_segment: Decimal
) -> SubmitResult:
    """A handset that is always reachable: the carrier accepts, then reports delivery after `delay`."""
    segments = segments_for(message)
    return SubmitResult(
        provider_ref=provider_ref,
        segments=segments,
        usage=Usage(currency=currency, price=price_per_segment * segments),
        reports=(
            ProviderReport(
                status=Status.DELIVERED,
                provider_ref=provider_ref,
                after=delay,
                network_code=SIMULATED_NETWORK_CODE,
            ),
        ),
    )
