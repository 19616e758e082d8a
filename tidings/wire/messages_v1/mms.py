"""MMS in the v1 format: text, one media item (image, audio, video, file, vCard) with an optional
caption, or several at once (`content`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, Strict, StringConstraints

from tidings.domain.content import Content, Media, MediaItem, MediaKind, MediaList, Text
from tidings.domain.message import Channel, MessageType
from tidings.wire.messages_v1.common import HttpUrl, PhoneNumber, StrictBool, StrictInt, V1Message, no_nul
from tidings.wire.messages_v1.resources import Caption, CaptionedMedia, WireModel

CHANNEL = Channel.MMS

Sender = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=50), AfterValidator(no_nul)]


class BaseMms(V1Message):
    to: PhoneNumber
    from_: Sender = Field(alias="from")  # a number, or any sender string the carrier takes
    ttl: Annotated[StrictInt, Field(ge=300, le=259200)] | None = None
    trusted_recipient: StrictBool | None = None

    @property
    def trusted(self) -> bool | None:
        return self.trusted_recipient


class MmsText(BaseMms):
    text: Annotated[str, Strict(), StringConstraints(min_length=1), AfterValidator(no_nul)]

    def to_content(self) -> Content:
        return Text(self.text)


class MmsImage(BaseMms):
    image: CaptionedMedia

    def to_content(self) -> Media:
        return self.image.to_media()


class MmsAudio(BaseMms):
    audio: CaptionedMedia

    def to_content(self) -> Media:
        return self.audio.to_media()


class MmsVideo(BaseMms):
    video: CaptionedMedia

    def to_content(self) -> Media:
        return self.video.to_media()


class MmsFile(BaseMms):
    file: CaptionedMedia

    def to_content(self) -> Media:
        return self.file.to_media()


class MmsVcard(BaseMms):
    vcard: CaptionedMedia

    def to_content(self) -> Media:
        return self.vcard.to_media()


class ContentItem(WireModel):
    type: MediaKind
    url: HttpUrl
    caption: Caption | None = None


class MmsContent(BaseMms):
    content: Annotated[list[ContentItem], Field(min_length=1)]

    def to_content(self) -> MediaList:
        return MediaList(tuple(MediaItem(item.type, item.url, item.caption) for item in self.content))


MODELS: dict[MessageType, type[V1Message]] = {
    MessageType.TEXT: MmsText,
    MessageType.IMAGE: MmsImage,
    MessageType.AUDIO: MmsAudio,
    MessageType.VIDEO: MmsVideo,
    MessageType.FILE: MmsFile,
    MessageType.VCARD: MmsVcard,
    MessageType.CONTENT: MmsContent,
}
