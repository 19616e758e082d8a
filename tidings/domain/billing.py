"""How many billable parts a message has: SMS segments where a channel splits texts, else one."""

from __future__ import annotations

from tidings.domain.channel_options import SmsOptions
from tidings.domain.channel_registry import Billing, channel_spec
from tidings.domain.content import Text
from tidings.domain.message import Message
from tidings.domain.sms_encoding import SmsEncoding, segment


def billable_parts(message: Message) -> int:
    spec = channel_spec(message.channel)
    if spec is None or spec.billing is not Billing.PER_SEGMENT or not isinstance(message.content, Text):
        return 1
    options = message.options
    encoding = options.encoding_type if isinstance(options, SmsOptions) and options.encoding_type else None
    return segment(message.content.text, encoding or SmsEncoding.AUTO).segments
