"""SMS in the v1 format: `message_type` text only."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from tidings.domain.message import Channel, MessageType
from tidings.domain.sms_encoding import SmsEncoding
from tidings.wire.messages_v1.common import (
    PHONE_NUMBER_PATTERN,
    PhoneNumber,
    StrictBool,
    StrictInt,
    V1Message,
)

# A sender is a number (E.164 without '+'), a short code, or an alphanumeric sender ID of at most
# 11 characters with at least one letter, which is what carriers accept in the originator field.
_NUMBER = re.compile(PHONE_NUMBER_PATTERN, re.ASCII)
_SHORT_CODE = re.compile(r"^\d{3,8}$", re.ASCII)
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9 _.&+\-]{0,9}[A-Za-z0-9._&+\-]?$")


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
Identifier = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=100)]


class SmsOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    encoding_type: SmsEncoding | None = None
    content_id: Identifier | None = None
    entity_id: Identifier | None = None
    pool_id: Identifier | None = None


class SmsText(V1Message):
    """`channel` sms, `message_type` text."""

    to: PhoneNumber
    from_: SmsSender = Field(alias="from")
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=3200)]
    ttl: Annotated[StrictInt, Field(ge=20, le=604800)] | None = None
    trusted_recipient: StrictBool | None = None
    sms: SmsOptions | None = None

    def content(self) -> dict[str, Any]:
        return {"text": self.text}

    def options(self) -> dict[str, Any]:
        return self.sms.model_dump(mode="json", exclude_none=True) if self.sms else {}

    @property
    def ttl_seconds(self) -> int | None:
        return self.ttl

    @property
    def trusted(self) -> bool | None:
        return self.trusted_recipient


MODELS: dict[tuple[Channel, MessageType], type[V1Message]] = {(Channel.SMS, MessageType.TEXT): SmsText}
