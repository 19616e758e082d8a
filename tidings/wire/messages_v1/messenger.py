"""Facebook Messenger in the v1 format: text and media, with the message's category and tag."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict, StringConstraints, model_validator

from tidings.domain import channel_options as domain
from tidings.domain.content import Media, Text
from tidings.domain.message import Channel, MessageType
from tidings.wire.messages_v1.common import V1Message, no_nul
from tidings.wire.messages_v1.resources import UrlOnly, WireModel
from tidings.wire.validation_errors import member_error

CHANNEL = Channel.MESSENGER

# Page-scoped ids: the page's and the user's.
PageScopedId = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=50), AfterValidator(no_nul)
]


class MessengerSettings(WireModel):
    category: Literal["response", "update", "message_tag"] | None = None
    tag: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _tag_with_message_tag(self) -> MessengerSettings:
        if self.category == "message_tag" and not self.tag:
            raise member_error("tag", "is required when category is message_tag")
        return self


class BaseMessenger(V1Message):
    to: PageScopedId
    from_: PageScopedId = Field(alias="from")
    messenger: MessengerSettings | None = None

    def to_options(self) -> domain.MessengerOptions | None:
        if self.messenger is None:
            return None
        return domain.MessengerOptions(category=self.messenger.category, tag=self.messenger.tag)


class MessengerText(BaseMessenger):
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=640), AfterValidator(no_nul)]

    def to_content(self) -> Text:
        return Text(self.text)


class MessengerImage(BaseMessenger):
    image: UrlOnly

    def to_content(self) -> Media:
        return self.image.to_media()


class MessengerAudio(BaseMessenger):
    audio: UrlOnly

    def to_content(self) -> Media:
        return self.audio.to_media()


class MessengerVideo(BaseMessenger):
    video: UrlOnly

    def to_content(self) -> Media:
        return self.video.to_media()


class MessengerFile(BaseMessenger):
    file: UrlOnly

    def to_content(self) -> Media:
        return self.file.to_media()


MODELS: dict[MessageType, type[V1Message]] = {
    MessageType.TEXT: MessengerText,
    MessageType.IMAGE: MessengerImage,
    MessageType.AUDIO: MessengerAudio,
    MessageType.VIDEO: MessengerVideo,
    MessageType.FILE: MessengerFile,
}
