"""How a message's typed content and channel options are kept in their JSON columns.

The stored form is the domain types' own fields (pydantic dumps and validates the plain
dataclasses, nested ones and enums included), not any API's wire format: a message sent through
v1 and one sent through v0.1 are stored alike. Fields left at their defaults are left out, to keep rows small.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

from tidings.domain.channel_options import ChannelOptions
from tidings.domain.channel_registry import channel_spec
from tidings.domain.content import Content, InboundContent
from tidings.domain.message import Channel, MessageType, content_type

T = TypeVar("T")


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def encode(value: object) -> dict[str, Any]:
    encoded: dict[str, Any] = _adapter(type(value)).dump_python(value, mode="json", exclude_defaults=True)
    return encoded


def decode_content(message_type: MessageType, stored: dict[str, Any]) -> Content | InboundContent:
    decoded: Content | InboundContent = _adapter(content_type(message_type)).validate_python(stored)
    return decoded


def decode_options(channel: Channel, stored: dict[str, Any] | None) -> ChannelOptions | None:
    spec = channel_spec(channel)
    if not stored or spec is None or spec.options is None:
        return None
    decoded: ChannelOptions = _adapter(spec.options).validate_python(stored)
    return decoded
