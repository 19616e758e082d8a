"""How many billable parts a message has: SMS segments, one for every other channel."""

from __future__ import annotations

from tidings.domain.message import Channel, Message
from tidings.domain.sms_encoding import SmsEncoding, segment


def billable_parts(message: Message) -> int:
    if message.channel is Channel.SMS and message.text is not None:
        encoding = SmsEncoding(message.options.get("encoding_type", SmsEncoding.AUTO.value))
        return segment(message.text, encoding).segments
    return 1
