"""Viber Business Messages (`viber_service`) in the v1 format: text, image, video and file, with
the message's category, time to live, type and action button."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict, StringConstraints, field_validator

from tidings.domain import channel_options as domain
from tidings.domain.content import Media, Text
from tidings.domain.message import Channel, MessageType
from tidings.wire.messages_v1.common import HttpUrl, PhoneNumber, StrictInt, V1Message, http_url, no_nul
from tidings.wire.messages_v1.resources import WireModel

CHANNEL = Channel.VIBER

ServiceId = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=50), AfterValidator(no_nul)]


class Action(WireModel):
    """A button: text and image messages only."""

    url: HttpUrl
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=30), AfterValidator(no_nul)]


class ViberSettings(WireModel):
    category: Literal["transaction", "promotion"] | None = None
    ttl: Annotated[StrictInt, Field(ge=30, le=259200)] | None = None
    type: Literal["string", "template"] | None = None

    def to_options(self, action: Action | None = None, **video: str) -> domain.ViberOptions:
        button = domain.ViberAction(action.url, action.text) if action else None
        return domain.ViberOptions(
            category=self.category, ttl=self.ttl, type=self.type, action=button, **video
        )


class WithAction(ViberSettings):
    action: Action | None = None


def _bounded_number(value: str, low: int, high: int) -> str:
    """The API spells these numbers as strings ("60")."""
    if not value.isdecimal() or not low <= int(value) <= high:
        raise ValueError(f"must be a whole number from {low} to {high}, as a string")
    return value


class VideoSettings(ViberSettings):
    duration: Annotated[str, Strict()]  # seconds, 1 to 600
    file_size: Annotated[str, Strict()]  # MB, 1 to 200

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _bounded_number(value, 1, 600)

    @field_validator("file_size")
    @classmethod
    def _file_size(cls, value: str) -> str:
        return _bounded_number(value, 1, 200)


class BaseViber(V1Message):
    to: PhoneNumber
    from_: ServiceId = Field(alias="from")
    viber_service: ViberSettings | None = None

    @property
    def ttl_seconds(self) -> int | None:
        """Viber's own `viber_service.ttl` when given, else the common `ttl`."""
        if self.viber_service is not None and self.viber_service.ttl is not None:
            return self.viber_service.ttl
        return self.ttl


class ViberText(BaseViber):
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1000), AfterValidator(no_nul)]
    viber_service: WithAction | None = None

    def to_content(self) -> Text:
        return Text(self.text)

    def to_options(self) -> domain.ViberOptions | None:
        return self.viber_service.to_options(self.viber_service.action) if self.viber_service else None


class ImageResource(WireModel):
    url: HttpUrl
    caption: (
        Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1000), AfterValidator(no_nul)]
        | None
    ) = None


class ViberImage(BaseViber):
    image: ImageResource
    viber_service: WithAction | None = None

    def to_content(self) -> Media:
        return Media(url=self.image.url, caption=self.image.caption)

    def to_options(self) -> domain.ViberOptions | None:
        return self.viber_service.to_options(self.viber_service.action) if self.viber_service else None


class VideoResource(WireModel):
    url: HttpUrl
    thumb_url: Annotated[str, Strict(), StringConstraints(max_length=1000), AfterValidator(http_url)]
    caption: Annotated[str, Strict(), StringConstraints(max_length=1000), AfterValidator(no_nul)] | None = (
        None
    )


class ViberVideo(BaseViber):
    video: VideoResource
    viber_service: VideoSettings

    def to_content(self) -> Media:
        return Media(url=self.video.url, caption=self.video.caption, thumb_url=self.video.thumb_url)

    def to_options(self) -> domain.ViberOptions:
        settings = self.viber_service
        return settings.to_options(duration=settings.duration, file_size=settings.file_size)


class FileResource(WireModel):
    url: HttpUrl
    name: (
        Annotated[str, Strict(), StringConstraints(min_length=1, max_length=25), AfterValidator(no_nul)]
        | None
    ) = None


class ViberFile(BaseViber):
    file: FileResource
    viber_service: ViberSettings | None = None

    def to_content(self) -> Media:
        return Media(url=self.file.url, name=self.file.name)

    def to_options(self) -> domain.ViberOptions | None:
        return self.viber_service.to_options() if self.viber_service else None


MODELS: dict[MessageType, type[V1Message]] = {
    MessageType.TEXT: ViberText,
    MessageType.IMAGE: ViberImage,
    MessageType.VIDEO: ViberVideo,
    MessageType.FILE: ViberFile,
}
