"""Fields every v1 message shares, with the limits the published spec and SDK models give them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from tidings.domain.message import Channel, MessageType, WebhookVersion

PHONE_NUMBER_PATTERN = r"^[1-9]\d{6,14}$"

_PHONE_NUMBER = re.compile(PHONE_NUMBER_PATTERN, re.ASCII)


def _phone_number(value: str) -> str:
    # fullmatch: `$` alone also matches before a trailing newline; re.ASCII: `\d` alone matches any
    # Unicode digit (e.g. Arabic-Indic), which no carrier routes.
    if not _PHONE_NUMBER.fullmatch(value):
        raise ValueError("must be a phone number in E.164 format (7 to 15 digits) without a leading + or 00")
    return value


PhoneNumber = Annotated[str, Strict(), AfterValidator(_phone_number)]
StrictText = Annotated[str, Strict()]
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


def _http_url(value: str) -> str:
    lowered = value.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(value) <= len("https://"):
        raise ValueError("must be an absolute http or https URL")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("must not contain white space or control characters")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text columns cannot hold U+0000; refuse it here rather than fail the insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


HttpUrl = Annotated[str, Strict(), StringConstraints(max_length=2048), AfterValidator(_http_url)]


class V1Message(BaseModel):
    """The part of a v1 request that is the same on every channel."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    channel: Channel
    message_type: MessageType
    to: StrictText
    from_: StrictText = Field(alias="from")
    client_ref: (
        Annotated[str, Strict(), StringConstraints(max_length=100), AfterValidator(_no_nul)] | None
    ) = None
    webhook_url: HttpUrl | None = None
    webhook_version: WebhookVersion | None = None

    def content(self) -> dict[str, Any]:
        """The type-specific payload, in its v1 wire shape."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The channel options object (e.g. `sms`), without unset members."""
        return {}

    @property
    def ttl_seconds(self) -> int | None:
        return None

    @property
    def trusted(self) -> bool | None:
        return None
