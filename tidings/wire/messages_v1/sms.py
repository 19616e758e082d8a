"""SMS in the v1 format: `message_type` text only."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, Strict, StringConstraints

from tidings.domain import channel_options as domain
from tidings.domain.content import Text
from tidings.domain.message import Channel, MessageType
from tidings.domain.sms_encoding import SmsEncoding
from tidings.wire.messages_v1.common import PhoneNumber, StrictBool, StrictInt, V1Message, no_nul
from tidings.wire.messages_v1.resources import WireModel

CHANNEL = Channel.SMS

# A sender is a number (E.164 without '+'), a short code, or an alphanumeric sender ID of at most
# 11 characters with at least one letter, which is what carriers accept in the originator field.
_NUMBER = re.compile(r"[1-9][0-9]{6,14}", re.ASCII)
_SHORT_CODE = re.compile(r"[0-9]{3,8}", re.ASCII)
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9 _.&+\-]{0,9}[A-Za-z0-9._&+\-]?")


def _sms_sender(value: str) -> str:
    if (
        _NUMBER.fullmatch(value)
        or _SHORT_CODE.fullmatch(value)
        or (len(value) <= 11 and _ALPHANUMERIC.fullmatch(value))
    ):
        return value
    raise ValueError(
        "must be a phone number in E.164 format without a leading + or 00, a short code, "
        "or an alphanumeric sender ID of up to 11 characters"
    )


SmsSender = Annotated[str, Strict(), AfterValidator(_sms_sender)]
Identifier = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(no_nul)]


class SmsOptions(WireModel):
    encoding_type: SmsEncoding | None = None
    content_id: Identifier | None = None
    entity_id: Identifier | None = None
    pool_id: Identifier | None = None


class SmsText(V1Message):
    """`channel` sms, `message_type` text."""

    to: PhoneNumber
    from_: SmsSender = Field(alias="from")
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=3200), AfterValidator(no_nul)]
    ttl: Annotated[StrictInt, Field(ge=20, le=604800)] | None = None
    trusted_recipient: StrictBool | None = None
    sms: SmsOptions | None = None

    def to_content(self) -> Text:
        return Text(self.text)

    def to_options(self) -> domain.SmsOptions | None:
        if self.sms is None:
            return None
        return domain.SmsOptions(
            encoding_type=self.sms.encoding_type,
            content_id=self.sms.content_id,
            entity_id=self.sms.entity_id,
            pool_id=self.sms.pool_id,
        )

    @property
    def trusted(self) -> bool | None:
        return self.trusted_recipient


MODELS: dict[MessageType, type[V1Message]] = {MessageType.TEXT: SmsText}
