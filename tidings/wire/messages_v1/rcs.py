"""RCS in the v1 format: text with suggestion chips, image, video, file, a rich card, a carousel
of cards, or a custom RBM object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tidings.domain import channel_options as domain
from tidings.domain.content import Card, Carousel, Custom, Media, Suggestion, SuggestionType, Text
from tidings.domain.message import Channel, MessageType
from tidings.wire.messages_v1.common import HttpUrl, PhoneNumber, StrictBool, StrictInt, V1Message, no_nul
from tidings.wire.messages_v1.resources import UrlOnly, WireModel
from tidings.wire.validation_errors import member_error

CHANNEL = Channel.RCS


AgentId = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-zA-Z0-9\-_&]+$", max_length=100)]
ChipText = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=25), AfterValidator(no_nul)]
Postback = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=2048), AfterValidator(no_nul)]
Description = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=500), AfterValidator(no_nul)
]
Coordinate = Annotated[str, Strict(), StringConstraints(pattern=r"^-?\d{1,3}(\.\d+)?$")]
IsoTime = Annotated[str, Strict(), StringConstraints(min_length=10, max_length=40)]
MessageText = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=3072), AfterValidator(no_nul)
]
CardTitle = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)]
CardText = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=2000), AfterValidator(no_nul)]


class BaseSuggestion(WireModel):
    type: str
    text: ChipText
    postback_data: Postback

    def to_suggestion(self) -> Suggestion:
        fields = self.model_dump(exclude={"type"}, exclude_none=True)
        return Suggestion(type=SuggestionType(self.type), **fields)


class ReplySuggestion(BaseSuggestion):
    type: Literal["reply"]


class DialSuggestion(BaseSuggestion):
    type: Literal["dial"]
    phone_number: PhoneNumber
    fallback_url: HttpUrl | None = None


class ViewLocationSuggestion(BaseSuggestion):
    type: Literal["view_location"]
    latitude: Coordinate
    longitude: Coordinate
    pin_label: Annotated[
        str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(no_nul)
    ]
    fallback_url: HttpUrl | None = None


class ShareLocationSuggestion(BaseSuggestion):
    type: Literal["share_location"]


class OpenUrlSuggestion(BaseSuggestion):
    type: Literal["open_url"]
    url: HttpUrl
    description: Description


class OpenUrlInWebviewSuggestion(BaseSuggestion):
    type: Literal["open_url_in_webview"]
    url: HttpUrl
    description: Description
    view_mode: Literal["FULL", "TALL", "HALF"] | None = None


class CalendarEventSuggestion(BaseSuggestion):
    type: Literal["create_calendar_event"]
    start_time: IsoTime
    end_time: IsoTime
    title: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(no_nul)]
    description: Description
    fallback_url: HttpUrl | None = None


_BY_TYPE: dict[str, type[BaseSuggestion]] = {
    "reply": ReplySuggestion,
    "dial": DialSuggestion,
    "view_location": ViewLocationSuggestion,
    "share_location": ShareLocationSuggestion,
    "open_url": OpenUrlSuggestion,
    "open_url_in_webview": OpenUrlInWebviewSuggestion,
    "create_calendar_event": CalendarEventSuggestion,
}


class UnknownSuggestion(WireModel):
    """Where a suggestion of no known `type` (or none) is sent, so that the error names its
    `type` member and the kinds there are. It never validates: a known type has its own model."""

    type: SuggestionType

    def to_suggestion(self) -> Suggestion:
        raise AssertionError(f"a {self.type.value} suggestion is validated by its own model")


def _suggestion_tag(value: Any) -> str:
    # Tags are the model names, so a validation error's location names the field, not the branch
    # (the error mapping drops capitalised union tags from wire names).
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    model = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    return (model or UnknownSuggestion).__name__


AnySuggestion = Annotated[
    Annotated[ReplySuggestion, Tag("ReplySuggestion")]
    | Annotated[DialSuggestion, Tag("DialSuggestion")]
    | Annotated[ViewLocationSuggestion, Tag("ViewLocationSuggestion")]
    | Annotated[ShareLocationSuggestion, Tag("ShareLocationSuggestion")]
    | Annotated[OpenUrlSuggestion, Tag("OpenUrlSuggestion")]
    | Annotated[OpenUrlInWebviewSuggestion, Tag("OpenUrlInWebviewSuggestion")]
    | Annotated[CalendarEventSuggestion, Tag("CalendarEventSuggestion")]
    | Annotated[UnknownSuggestion, Tag("UnknownSuggestion")],
    Discriminator(_suggestion_tag),
]


def _suggestions(items: list[AnySuggestion] | None) -> tuple[Suggestion, ...]:
    return tuple(item.to_suggestion() for item in items or ())


class RcsSettings(WireModel):
    category: (
        Literal["acknowledgement", "authentication", "promotion", "service-request", "transaction"] | None
    ) = None


class CardSettings(RcsSettings):
    card_orientation: Literal["VERTICAL", "HORIZONTAL"] | None = None
    image_alignment: Literal["LEFT", "RIGHT"] | None = None

    @model_validator(mode="after")
    def _alignment_when_horizontal(self) -> CardSettings:
        if self.card_orientation == "HORIZONTAL" and self.image_alignment is None:
            raise member_error("image_alignment", "is required when card_orientation is HORIZONTAL")
        return self


class CarouselSettings(RcsSettings):
    card_width: Literal["SMALL", "MEDIUM"]


class BaseRcs(V1Message):
    to: PhoneNumber
    from_: AgentId = Field(alias="from")
    ttl: Annotated[StrictInt, Field(ge=20, le=259200)] | None = None
    trusted_recipient: StrictBool | None = None
    rcs: RcsSettings | None = None

    @property
    def trusted(self) -> bool | None:
        return self.trusted_recipient

    def to_options(self) -> domain.RcsOptions | None:
        return domain.RcsOptions(category=self.rcs.category) if self.rcs else None


class RcsText(BaseRcs):
    text: MessageText
    suggestions: Annotated[list[AnySuggestion], Field(min_length=1, max_length=11)] | None = None

    def to_content(self) -> Text:
        return Text(self.text, _suggestions(self.suggestions))


class RcsImage(BaseRcs):
    image: UrlOnly

    def to_content(self) -> Media:
        return self.image.to_media()


class RcsVideo(BaseRcs):
    video: UrlOnly

    def to_content(self) -> Media:
        return self.video.to_media()


class RcsFile(BaseRcs):
    file: UrlOnly

    def to_content(self) -> Media:
        return self.file.to_media()


class CardResource(WireModel):
    title: CardTitle
    text: CardText
    media_url: HttpUrl
    media_description: CardTitle | None = None
    media_height: Literal["SHORT", "MEDIUM", "TALL"] | None = None
    thumbnail_url: HttpUrl | None = None
    media_force_refresh: StrictBool | None = None
    suggestions: Annotated[list[AnySuggestion], Field(min_length=1, max_length=4)] | None = None

    def to_card(self) -> Card:
        return Card(
            title=self.title,
            text=self.text,
            media_url=self.media_url,
            media_description=self.media_description,
            media_height=self.media_height,
            thumbnail_url=self.thumbnail_url,
            media_force_refresh=self.media_force_refresh,
            suggestions=_suggestions(self.suggestions),
        )


class RcsCard(BaseRcs):
    card: CardResource
    rcs: CardSettings | None = None

    # A check of `card` against the `rcs` validated before it (field order), not of the whole
    # model: a model validator runs only once every field is valid, so a request with a bad `to`
    # as well would be told of `to` alone.
    @field_validator("card")
    @classmethod
    def _height_when_vertical(cls, card: CardResource, info: ValidationInfo) -> CardResource:
        rcs = info.data.get("rcs")
        if isinstance(rcs, CardSettings) and rcs.card_orientation == "VERTICAL" and card.media_height is None:
            raise member_error("media_height", "is required when rcs.card_orientation is VERTICAL")
        return card

    def to_content(self) -> Card:
        return self.card.to_card()

    def to_options(self) -> domain.RcsOptions | None:
        if self.rcs is None:
            return None
        return domain.RcsOptions(
            category=self.rcs.category,
            card_orientation=self.rcs.card_orientation,
            image_alignment=self.rcs.image_alignment,
        )


class CarouselResource(WireModel):
    cards: Annotated[list[CardResource], Field(min_length=2, max_length=10)]


class RcsCarousel(BaseRcs):
    carousel: CarouselResource
    suggestions: Annotated[list[AnySuggestion], Field(min_length=1, max_length=11)] | None = None
    rcs: CarouselSettings

    def to_content(self) -> Carousel:
        return Carousel(tuple(card.to_card() for card in self.carousel.cards), _suggestions(self.suggestions))

    def to_options(self) -> domain.RcsOptions:
        return domain.RcsOptions(category=self.rcs.category, card_width=self.rcs.card_width)


class RcsCustom(BaseRcs):
    custom: dict[str, Any]

    def to_content(self) -> Custom:
        return Custom(self.custom)


MODELS: dict[MessageType, type[V1Message]] = {
    MessageType.TEXT: RcsText,
    MessageType.IMAGE: RcsImage,
    MessageType.VIDEO: RcsVideo,
    MessageType.FILE: RcsFile,
    MessageType.CARD: RcsCard,
    MessageType.CAROUSEL: RcsCarousel,
    MessageType.CUSTOM: RcsCustom,
}
