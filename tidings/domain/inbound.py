"""Messages arriving for an account, and the rule that decides where their webhook goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tidings.domain.application import Application
from tidings.domain.channel_registry import ChannelSpec
from tidings.domain.content import InboundContent, Text
from tidings.domain.message import Channel, MessageType, Usage, WebhookVersion
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
class InboundContext:
    """The earlier message an inbound one replies to or reacts to."""

    message_uuid: str | None
    message_from: str | None = None


@dataclass(frozen=True)
class InboundArrival:
    """What a connector hands over: a message from `sender` to one of our addresses (`to`)."""

    connector: str
    channel: Channel
    sender: str
    to: str
    message_type: MessageType
    content: InboundContent
    received_at: datetime
    provider_ref: str | None = None
    network_code: str | None = None
    profile_name: str | None = None
    context: InboundContext | None = None
    # Limits routing to this account's addresses (a tenant driving the simulator); None lets the
    # message go to whichever account holds the address, as the network's own traffic does.
    account_id: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    uuid: str
    account_id: str
    channel: Channel
    to: str  # our address: the rented number, or the page, service or agent id
    sender: str
    message_type: MessageType
    content: InboundContent
    received_at: datetime
    usage: Usage
    application_id: str | None = None
    network_code: str | None = None
    profile_name: str | None = None
    context: InboundContext | None = None
    segmented: bool = False  # arrived on a channel that splits texts into segments (SMS)

    @property
    def text(self) -> str | None:
        return self.content.text if isinstance(self.content, Text) else None

    @property
    def keyword(self) -> str:
        """The first word of the text, upper-cased, as Vonage reports it."""
        words = (self.text or "").split(maxsplit=1)
        return words[0].upper() if words else ""

    @property
    def num_messages(self) -> int:
        """How many SMS parts a handset would have sent this text in."""
        return segment(self.text or "").segments

    @property
    def is_unicode(self) -> bool:
        return not is_gsm7(self.text or "")


@dataclass(frozen=True)
class InboundOwner:
    """Who holds the address a message arrived at: a rented number or a linked external account."""

    account_id: str
    address: str
    app_id: str | None = None
    mo_http_url: str | None = None  # a number's own SMS API inbound URL


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
    spec: ChannelSpec,
    owner: InboundOwner,
    application: Application | None,
    settings: AccountInboundSettings,
) -> InboundRoute:
    """Where the migration guide says an inbound message goes:

    - an account still switched to the SMS API keeps its SMS on the SMS API configuration;
    - otherwise an address linked to a Messages-enabled application → that application's inbound
      URL, in the application's Messages API version, signed with its id;
    - otherwise, on a channel the SMS API also serves, the account-level SMS setting in the SMS
      API's inbound shape: the number's own inbound URL (moHttpUrl) when set, else the account's;
    - otherwise nowhere: the message is stored only.
    """
    legacy = InboundRoute(url=owner.mo_http_url or settings.mo_callback_url, shape=InboundShape.LEGACY_SMS)
    if spec.legacy_sms_inbound and settings.inbound_sms_api == "sms":
        return legacy
    capability = application.messages if application else None
    if application is not None and capability is not None and capability.inbound_url is not None:
        return InboundRoute(
            url=capability.inbound_url.address,
            shape=InboundShape.of(capability.version),
            application_id=application.id,
        )
    if spec.legacy_sms_inbound:
        return legacy
    return InboundRoute(url=None, shape=InboundShape.V1)


@dataclass(frozen=True)
class Received:
    message_uuid: str
    route: InboundRoute


@dataclass(frozen=True)
class Unroutable:
    """Kept in `unroutable_inbound`, never dropped: no account holds the address."""

    id: str
    reason: str
