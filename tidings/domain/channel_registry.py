"""The channels Tidings speaks, and everything that differs between them, in one table.

Everything else asks this table rather than naming a channel: which message types a channel takes
and delivers, which statuses it can report (read receipts only where the platform has them),
what a client may PATCH, how it is billed, how its inbound messages find their account, and what
v0.1 calls it. A channel's request formats live in wire/ (one module per channel and API version);
adding a channel adds its entry here and its wire module there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tidings.domain.channel_options import (
    ChannelOptions,
    MessengerOptions,
    RcsOptions,
    SmsOptions,
    ViberOptions,
    WhatsappOptions,
)
from tidings.domain.message import Channel, Direction, MessageType, Status

T = MessageType


class Billing(StrEnum):
    PER_SEGMENT = "per_segment"  # a text is split into SMS segments, each billed and counted
    PER_MESSAGE = "per_message"


class InboundAddress(StrEnum):
    """What an inbound message is addressed to, and so where its account is found."""

    NUMBER = "number"  # a number an account rents
    EXTERNAL_ACCOUNT = "external_account"  # a page, service or agent id linked to an account


class UpdateStatus(StrEnum):
    """What `PATCH /v1/messages/{uuid}` may set."""

    READ = "read"  # an inbound message the client has read (blue ticks)
    REVOKED = "revoked"  # an outbound message the client takes back before it is delivered


@dataclass(frozen=True)
class MessageUpdate:
    """A client's PATCH: the status to set, and (WhatsApp) whether to show the user a replying
    indicator while the answer is written."""

    status: UpdateStatus
    show_replying_indicator: bool = False


@dataclass(frozen=True)
class V01Names:
    """How the nested v0.1 format names the channel and its parties."""

    type: str
    sender_key: str = "number"  # "number" or "id"
    recipient_key: str = "number"


@dataclass(frozen=True)
class ChannelSpec:
    channel: Channel
    outbound: frozenset[MessageType]
    inbound: frozenset[MessageType]
    statuses: frozenset[Status]  # besides `accepted`, what a message on this channel can reach
    options: type[ChannelOptions] | None
    billing: Billing
    inbound_address: InboundAddress
    v01: V01Names
    # PATCH: which status may be set, and on which direction's messages.
    updates: Mapping[UpdateStatus, Direction]
    # Carried over carrier networks (which report network codes), rather than an app platform.
    carrier_network: bool = False
    # Inbound that no application takes may still go to the SMS API's configuration.
    legacy_sms_inbound: bool = False

    @property
    def has_read_receipts(self) -> bool:
        return Status.READ in self.statuses


_SENT = frozenset({Status.SUBMITTED, Status.DELIVERED, Status.REJECTED, Status.UNDELIVERABLE})
_SENT_AND_READ = _SENT | {Status.READ}
_MEDIA = frozenset({T.IMAGE, T.AUDIO, T.VIDEO, T.FILE})

CHANNELS: Mapping[Channel, ChannelSpec] = {
    spec.channel: spec
    for spec in (
        ChannelSpec(
            channel=Channel.SMS,
            outbound=frozenset({T.TEXT}),
            inbound=frozenset({T.TEXT}),
            statuses=_SENT,
            options=SmsOptions,
            billing=Billing.PER_SEGMENT,
            inbound_address=InboundAddress.NUMBER,
            v01=V01Names("sms"),
            updates={},
            carrier_network=True,
            legacy_sms_inbound=True,
        ),
        ChannelSpec(
            channel=Channel.MMS,
            outbound=frozenset({T.TEXT, T.VCARD, T.CONTENT} | _MEDIA),
            inbound=frozenset({T.TEXT, T.VCARD, T.CONTENT} | _MEDIA),
            statuses=_SENT,
            options=None,
            billing=Billing.PER_MESSAGE,
            inbound_address=InboundAddress.NUMBER,
            v01=V01Names("mms"),
            updates={},
            carrier_network=True,
        ),
        ChannelSpec(
            channel=Channel.WHATSAPP,
            outbound=frozenset({T.TEXT, T.TEMPLATE, T.STICKER, T.CUSTOM, T.REACTION} | _MEDIA),
            inbound=frozenset(
                {
                    T.TEXT,
                    T.STICKER,
                    T.VCARD,
                    T.LOCATION,
                    T.REPLY,
                    T.BUTTON,
                    T.ORDER,
                    T.REACTION,
                    T.UNSUPPORTED,
                }
                | _MEDIA
            ),
            statuses=_SENT_AND_READ,
            options=WhatsappOptions,
            billing=Billing.PER_MESSAGE,
            inbound_address=InboundAddress.EXTERNAL_ACCOUNT,
            v01=V01Names("whatsapp"),
            updates={UpdateStatus.READ: Direction.INBOUND},
        ),
        ChannelSpec(
            channel=Channel.MESSENGER,
            outbound=frozenset({T.TEXT} | _MEDIA),
            inbound=frozenset({T.TEXT, T.UNSUPPORTED} | _MEDIA),
            statuses=_SENT_AND_READ,
            options=MessengerOptions,
            billing=Billing.PER_MESSAGE,
            inbound_address=InboundAddress.EXTERNAL_ACCOUNT,
            v01=V01Names("messenger", sender_key="id", recipient_key="id"),
            updates={},
        ),
        ChannelSpec(
            channel=Channel.VIBER,
            outbound=frozenset({T.TEXT, T.IMAGE, T.VIDEO, T.FILE}),
            inbound=frozenset({T.TEXT, T.IMAGE, T.VIDEO, T.FILE}),
            statuses=_SENT_AND_READ,
            options=ViberOptions,
            billing=Billing.PER_MESSAGE,
            inbound_address=InboundAddress.EXTERNAL_ACCOUNT,
            v01=V01Names("viber_service_msg", sender_key="id"),
            updates={},
        ),
        ChannelSpec(
            channel=Channel.RCS,
            outbound=frozenset({T.TEXT, T.IMAGE, T.VIDEO, T.FILE, T.CARD, T.CAROUSEL, T.CUSTOM}),
            inbound=frozenset({T.TEXT, T.LOCATION, T.REPLY} | _MEDIA),
            statuses=_SENT_AND_READ,
            options=RcsOptions,
            billing=Billing.PER_MESSAGE,
            inbound_address=InboundAddress.EXTERNAL_ACCOUNT,
            v01=V01Names("rcs"),
            updates={UpdateStatus.REVOKED: Direction.OUTBOUND},
        ),
    )
}


def channel_spec(channel: Channel) -> ChannelSpec | None:
    """The channel's entry; None for a channel Tidings does not speak (yet)."""
    return CHANNELS.get(channel)
