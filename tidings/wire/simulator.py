"""POST /sim/inbound: a message the simulated network delivers to one of your addresses, on any
channel and of any type that channel delivers inbound, in the v1 inbound webhook's own shape
(`message_type` and the object it names: `text`, `image`, `location`, `reply`…)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from tidings.channels.simulator.scenarios import SIMULATED_NETWORK_CODE
from tidings.domain import content as domain
from tidings.domain.channel_registry import channel_spec
from tidings.domain.errors import InvalidMessageType, InvalidParameter, InvalidParams, UnsupportedChannel
from tidings.domain.inbound import InboundArrival, InboundContext
from tidings.domain.message import Channel, MessageType
from tidings.wire.openapi_schema import inline_definitions
from tidings.wire.validation_errors import invalid_parameters, member_error

Address = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^\x00\s]+$")]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://[^\s\x00]+$")]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MediaIn(_Part):
    url: Url
    caption: Short | None = None
    name: Short | None = None

    def to_content(self) -> domain.Media:
        return domain.Media(url=self.url, caption=self.caption, name=self.name)


class ContentItemIn(_Part):
    type: domain.MediaKind
    url: Url
    caption: Short | None = None


class StickerIn(_Part):
    url: Url | None = None
    id: Short | None = None


class LocationIn(_Part):
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)
    name: Short | None = None
    address: Short | None = None


class ReplyIn(_Part):
    id: Short
    title: Short
    description: Short | None = None


class ButtonIn(_Part):
    payload: Short
    text: Short


class OrderItemIn(_Part):
    product_retailer_id: Short
    quantity: Short
    item_price: Short
    currency: Short


class OrderIn(_Part):
    catalog_id: Short
    product_items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=100)]
    text: Short | None = None


class ReactionIn(_Part):
    action: domain.ReactionAction
    emoji: Short | None = None


class ContextIn(_Part):
    message_uuid: Short


class SimulatedInbound(_Part):
    channel: Channel
    from_: Address = Field(alias="from")
    to: Address
    message_type: MessageType = MessageType.TEXT
    text: Annotated[str, StringConstraints(max_length=10_000, pattern=r"^[^\x00]*$")] | None = None
    image: MediaIn | None = None
    audio: MediaIn | None = None
    video: MediaIn | None = None
    file: MediaIn | None = None
    vcard: MediaIn | None = None
    content: Annotated[list[ContentItemIn], Field(min_length=1, max_length=10)] | None = None
    sticker: StickerIn | None = None
    location: LocationIn | None = None
    reply: ReplyIn | None = None
    button: ButtonIn | None = None
    order: OrderIn | None = None
    reaction: ReactionIn | None = None
    network_code: Annotated[str, StringConstraints(pattern=r"^\d{5,6}$")] | None = None
    profile_name: Short | None = None
    context: ContextIn | None = None

    @model_validator(mode="after")
    def _has_its_content(self) -> SimulatedInbound:
        if (
            self.message_type is not MessageType.UNSUPPORTED
            and getattr(self, self.message_type.value, None) is None
        ):
            member = self.message_type.value
            raise member_error(member, f"a {member} message needs its `{member}` member")
        return self

    def to_content(self) -> domain.InboundContent:
        kind = self.message_type
        if kind is MessageType.TEXT:
            return domain.Text(self.text or "")
        if kind is MessageType.CONTENT:
            return domain.MediaList(
                tuple(domain.MediaItem(item.type, item.url, item.caption) for item in self.content or ())
            )
        if kind is MessageType.UNSUPPORTED:
            return domain.Unsupported()
        part: Any = getattr(self, kind.value)
        if isinstance(part, MediaIn):
            return part.to_content()
        if isinstance(part, OrderIn):
            items = tuple(domain.OrderItem(**item.model_dump()) for item in part.product_items)
            return domain.Order(part.catalog_id, items, part.text)
        converted: domain.InboundContent = domain_type(kind)(**part.model_dump())
        return converted


def domain_type(kind: MessageType) -> Any:
    return {
        MessageType.STICKER: domain.Sticker,
        MessageType.LOCATION: domain.Location,
        MessageType.REPLY: domain.Reply,
        MessageType.BUTTON: domain.Button,
        MessageType.REACTION: domain.Reaction,
    }[kind]


def parse_simulated_inbound(body: Any) -> SimulatedInbound:
    if not isinstance(body, dict):
        raise InvalidParams([InvalidParameter("body", "must be a JSON object.")])
    try:
        channel = Channel(str(body.get("channel")))
    except ValueError:
        channel = None
    spec = channel_spec(channel) if channel else None
    if body.get("channel") is not None and spec is None:
        raise UnsupportedChannel(f"The simulator has no channel `{body.get('channel')}`.")
    message_type = body.get("message_type", MessageType.TEXT.value)
    if spec is not None and (
        not isinstance(message_type, str) or message_type not in {t.value for t in spec.inbound}
    ):
        raise InvalidMessageType(f"A {spec.channel.value} user cannot send `{message_type}` messages.")
    try:
        return SimulatedInbound.model_validate(body)
    except ValidationError as error:
        raise InvalidParams(invalid_parameters(error)) from None


def request_body_schema() -> dict[str, Any]:
    """The OpenAPI description of the request body."""
    schema = inline_definitions(SimulatedInbound.model_json_schema(by_alias=True))
    return {"content": {"application/json": {"schema": schema}}, "required": True}


def to_arrival(
    request: SimulatedInbound,
    *,
    connector: str,
    provider_ref: str,
    received_at: datetime,
    account_id: str | None,
) -> InboundArrival:
    """The simulated network's handover. Messages over carrier networks carry a network code
    (the simulator's own unless the request names one)."""
    spec = channel_spec(request.channel)
    assert spec is not None  # parse_simulated_inbound refused unknown channels
    sender = request.from_.removeprefix("+")
    to = request.to.removeprefix("+")
    context = InboundContext(request.context.message_uuid) if request.context else None
    return InboundArrival(
        connector=connector,
        channel=request.channel,
        sender=sender,
        to=to,
        message_type=request.message_type,
        content=request.to_content(),
        received_at=received_at,
        provider_ref=provider_ref,
        network_code=request.network_code or (SIMULATED_NETWORK_CODE if spec.carrier_network else None),
        profile_name=request.profile_name,
        context=context,
        account_id=account_id,
    )
