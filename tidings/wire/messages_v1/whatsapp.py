"""WhatsApp in the v1 format: text, media, templates, stickers, custom objects and reactions,
any of them quoting or replying to an earlier message (`context`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, Strict, StringConstraints, model_validator

from tidings.domain import channel_options as domain
from tidings.domain.content import Custom, Media, Reaction, ReactionAction, Sticker, Template, Text
from tidings.domain.message import Channel, MessageType
from tidings.wire.messages_v1.common import HttpUrl, StrictText, V1Message, http_url, no_nul
from tidings.wire.messages_v1.resources import CaptionedMedia, FreeText, WireModel
from tidings.wire.validation_errors import member_error

CHANNEL = Channel.WHATSAPP

# A WhatsApp user is a phone number or, since usernames, a business-scoped user id
# (US.13491208655302741918): the SDK takes any string here.
Address = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=50), AfterValidator(no_nul)]
Locale = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")]


class Context(WireModel):
    message_uuid: Annotated[
        str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(no_nul)
    ]


class BaseWhatsapp(V1Message):
    to: Address
    from_: Address = Field(alias="from")
    context: Context | None = None
    category: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=50)] | None = None

    @property
    def context_message_uuid(self) -> str | None:
        return self.context.message_uuid if self.context else None

    def to_options(self) -> domain.WhatsappOptions | None:
        return domain.WhatsappOptions(category=self.category) if self.category else None


class WhatsappText(BaseWhatsapp):
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=4096), AfterValidator(no_nul)]

    def to_content(self) -> Text:
        return Text(self.text)


class WhatsappImage(BaseWhatsapp):
    image: CaptionedMedia

    def to_content(self) -> Media:
        return self.image.to_media()


class AudioResource(WireModel):
    # The bounds go before the URL check: stacked after it, pydantic words them as a list's.
    url: Annotated[str, Strict(), StringConstraints(min_length=10, max_length=2000), AfterValidator(http_url)]


class WhatsappAudio(BaseWhatsapp):
    audio: AudioResource

    def to_content(self) -> Media:
        return Media(url=self.audio.url)


class VideoResource(WireModel):
    url: HttpUrl
    caption: FreeText | None = None


class WhatsappVideo(BaseWhatsapp):
    video: VideoResource

    def to_content(self) -> Media:
        return Media(url=self.video.url, caption=self.video.caption)


class FileResource(WireModel):
    url: HttpUrl
    caption: FreeText | None = None
    name: (
        Annotated[str, Strict(), StringConstraints(min_length=1, max_length=255), AfterValidator(no_nul)]
        | None
    ) = None


class WhatsappFile(BaseWhatsapp):
    file: FileResource

    def to_content(self) -> Media:
        return Media(url=self.file.url, caption=self.file.caption, name=self.file.name)


class TemplateResource(WireModel):
    """A template by name; other members (the platform's components) are kept and passed on."""

    model_config = WireModel.model_config | {"extra": "allow"}

    name: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=512), AfterValidator(no_nul)]
    parameters: list[StrictText] | None = None


class TemplateSettings(WireModel):
    locale: Locale | None = None
    policy: Literal["deterministic"] | None = None


class WhatsappTemplate(BaseWhatsapp):
    template: TemplateResource
    whatsapp: TemplateSettings | None = None

    def to_content(self) -> Template:
        extra: dict[str, Any] = dict(self.template.model_extra or {})
        parameters = tuple(self.template.parameters) if self.template.parameters is not None else None
        return Template(self.template.name, parameters, extra or None)

    def to_options(self) -> domain.WhatsappOptions | None:
        settings = self.whatsapp
        if settings is None and self.category is None:
            return None
        return domain.WhatsappOptions(
            locale=settings.locale if settings else None,
            policy=settings.policy if settings else None,
            category=self.category,
        )


class StickerResource(WireModel):
    url: HttpUrl | None = None
    id: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StickerResource:
        if (self.url is None) == (self.id is None):
            raise ValueError("must have exactly one of url and id")
        return self


class WhatsappSticker(BaseWhatsapp):
    sticker: StickerResource

    def to_content(self) -> Sticker:
        return Sticker(url=self.sticker.url, id=self.sticker.id)


class WhatsappCustom(BaseWhatsapp):
    """Any object WhatsApp understands (interactive lists and buttons, location, contacts,
    products, templates with media…), passed on as written."""

    custom: dict[str, Any] | None = None

    def to_content(self) -> Custom:
        return Custom(self.custom)


class ReactionResource(WireModel):
    action: ReactionAction
    emoji: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=10)] | None = None

    @model_validator(mode="after")
    def _emoji_to_react(self) -> ReactionResource:
        if self.action is ReactionAction.REACT and self.emoji is None:
            raise member_error("emoji", "is required to react")
        return self


class WhatsappReaction(BaseWhatsapp):
    """An emoji on an earlier message, which `context` names (required here)."""

    reaction: ReactionResource
    context: Context

    def to_content(self) -> Reaction:
        return Reaction(self.reaction.action, self.reaction.emoji)


MODELS: dict[MessageType, type[V1Message]] = {
    MessageType.TEXT: WhatsappText,
    MessageType.IMAGE: WhatsappImage,
    MessageType.AUDIO: WhatsappAudio,
    MessageType.VIDEO: WhatsappVideo,
    MessageType.FILE: WhatsappFile,
    MessageType.TEMPLATE: WhatsappTemplate,
    MessageType.STICKER: WhatsappSticker,
    MessageType.CUSTOM: WhatsappCustom,
    MessageType.REACTION: WhatsappReaction,
}
