"""What every v1 request shares: the common fields, the field types and limits the published spec
and the SDK models give them, and the conversion hooks each channel's models fill in."""

from __future__ import annotations

import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from tidings.domain.channel_options import ChannelOptions
from tidings.domain.content import Content
from tidings.domain.message import Channel, MessageType, WebhookVersion

_DIGITS = re.compile(r"[1-9][0-9]{6,14}", re.ASCII)


def _phone_number(value: str) -> str:
    """E.164 as the Messages API writes it: 7 to 15 digits, no `+` or `00`, starting with a
    country calling code that exists (libphonenumber's table). `fullmatch` and re.ASCII: a
    trailing newline or another script's digits are not a number any carrier routes."""
    if _DIGITS.fullmatch(value) and _has_country_code(value):
        return value
    raise ValueError("must be a phone number in E.164 format (7 to 15 digits) without a leading + or 00")


def _has_country_code(digits: str) -> bool:
    return any(int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE for size in (1, 2, 3))


def http_url(value: str) -> str:
    lowered = value.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(value) <= len("https://"):
        raise ValueError("must be an absolute http or https URL")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("must not contain white space or control characters")
    return value


def no_nul(value: str) -> str:
    # PostgreSQL text columns cannot hold U+0000; refuse it here rather than fail the insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


PhoneNumber = Annotated[str, Strict(), AfterValidator(_phone_number)]
HttpUrl = Annotated[str, Strict(), StringConstraints(max_length=2048), AfterValidator(http_url)]
StrictText = Annotated[str, Strict(), AfterValidator(no_nul)]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
# The Messages API's own range for `ttl`, in seconds (20 to 604800, the migration guide); channels
# with a narrower one (MMS, RCS, the SDK models) declare their own.
Ttl = Annotated[StrictInt, Field(ge=20, le=604800)]


class V1Message(BaseModel):
    """The part of a v1 request that is the same on every channel. Each channel's model adds its
    payload and options and says how they become the domain's content and options."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    channel: Channel
    message_type: MessageType
    to: StrictText
    from_: StrictText = Field(alias="from")
    client_ref: Annotated[str, Strict(), StringConstraints(max_length=100), AfterValidator(no_nul)] | None = (
        None
    )
    webhook_url: HttpUrl | None = None
    webhook_version: WebhookVersion | None = None
    ttl: Ttl | None = None

    def to_content(self) -> Content:
        raise NotImplementedError

    def to_options(self) -> ChannelOptions | None:
        return None

    @property
    def ttl_seconds(self) -> int | None:
        return self.ttl

    @property
    def trusted(self) -> bool | None:
        return None

    @property
    def context_message_uuid(self) -> str | None:
        return None
