"""Pieces several channels' v1 requests share: media objects and text limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, StringConstraints

from tidings.domain.content import Media
from tidings.wire.messages_v1.common import HttpUrl, no_nul

# A media caption, as the SDK models bound it (MMS, WhatsApp images: 1 to 3000 characters).
Caption = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=3000), AfterValidator(no_nul)]
FreeText = Annotated[str, Strict(), AfterValidator(no_nul)]


class WireModel(BaseModel):
    """A nested object of a request: unknown members are ignored, as on the request itself."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class UrlOnly(WireModel):
    """`{url}`: Messenger's media, RCS's image, video and file."""

    url: HttpUrl

    def to_media(self) -> Media:
        return Media(url=self.url)


class CaptionedMedia(WireModel):
    """`{url, caption?}` with the SDK's caption limits (MMS media, WhatsApp images)."""

    url: HttpUrl
    caption: Caption | None = None

    def to_media(self) -> Media:
        return Media(url=self.url, caption=self.caption)
