"""Messages arriving for a rented number, and the rule that decides where their webhook goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tidings.domain.application import Application
from tidings.domain.message import Channel, Usage, WebhookVersion
from tidings.domain.number import OwnedNumber
from tidings.domain.sms_encoding import is_gsm7, segment


class InboundShape(StrEnum):
    """The body an inbound webhook is rendered in."""

    V1 = "v1"  # Messages API v1, flat
    V0_1 = "v0.1"  # Messages API v0.1, nested
    LEGACY_SMS = "legacy_sms"  # SMS API inbound-sms (msisdn, to, messageId, text, type, keyword…)

    @classmethod
    def of(cls, version: WebhookVersion) -> InboundShape:
        return cls.V1 if version is WebhookVersion.V1 else cls.V0_1


@dataclass(frozen=True)
class InboundMessage:
    uuid: str
    account_id: str
    channel: Channel
    to: str  # the rented number
    sender: str
    text: str
    received_at: datetime
    usage: Usage
    application_id: str | None = None
    network_code: str | None = None

    @property
    def keyword(self) -> str:
        """The first word of the text, upper-cased, as Vonage reports it."""
        words = self.text.split(maxsplit=1)
        return words[0].upper() if words else ""

    @property
    def num_messages(self) -> int:
        """How many SMS parts a handset would have sent this text in."""
        return segment(self.text).segments

    @property
    def is_unicode(self) -> bool:
        return not is_gsm7(self.text)


@dataclass(frozen=True)
class AccountInboundSettings:
    """The account-level settings inbound routing reads (the Account API's SMS settings)."""

    mo_callback_url: str | None
    inbound_sms_api: str  # "messages" | "sms": the dashboard's default SMS API switch
    currency: str


@dataclass(frozen=True)
class InboundRoute:
    url: str | None  # None: nobody configured a webhook; the message is stored only
    shape: InboundShape
    application_id: str | None = None


def route_inbound(
    channel: Channel,
    number: OwnedNumber,
    application: Application | None,
    settings: AccountInboundSettings,
) -> InboundRoute:
    """Where the migration guide says an inbound message goes:

    - an account still switched to the SMS API keeps its SMS on the SMS API configuration;
    - otherwise a number linked to a Messages-enabled application → that application's inbound
      URL, in the application's Messages API version, signed with its id;
    - otherwise (no application) → the account-level SMS setting, in the SMS API's inbound shape:
      the number's own inbound URL (moHttpUrl) when set, else the account's.
    """
    legacy = InboundRoute(url=number.mo_http_url or settings.mo_callback_url, shape=InboundShape.LEGACY_SMS)
    if channel is Channel.SMS and settings.inbound_sms_api == "sms":
        return legacy
    capability = application.messages if application else None
    if application is not None and capability is not None and capability.inbound_url is not None:
        return InboundRoute(
            url=capability.inbound_url.address,
            shape=InboundShape.of(capability.version),
            application_id=application.id,
        )
    if channel is Channel.SMS:
        return legacy
    return InboundRoute(url=None, shape=InboundShape.V1)
