"""POST /v1/messages requests: one model per channel and message type, chosen from the body.

Each channel's models live in a module of this package that names its `CHANNEL` and its `MODELS`
(message type → model); they are found here by looking, so adding a channel adds its module and
its entry in the channel registry, nothing else. Which channels and types exist at all is the
registry's word: a channel it does not list is unsupported (1100), a type it does not list for the
channel is invalid (1140), before any field is looked at.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from tidings.domain.channel_registry import channel_spec
from tidings.domain.errors import InvalidMessageType, InvalidParameter, InvalidParams, UnsupportedChannel
from tidings.domain.message import Channel, Message, MessageType
from tidings.wire.messages_v1.common import V1Message
from tidings.wire.openapi_schema import inline_definitions
from tidings.wire.validation_errors import invalid_parameters


@cache
def request_models() -> Mapping[tuple[Channel, MessageType], type[V1Message]]:
    """Every (channel, message type) this API version has a request model for."""
    found: dict[tuple[Channel, MessageType], type[V1Message]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        channel = getattr(module, "CHANNEL", None)
        models: Mapping[MessageType, type[V1Message]] = getattr(module, "MODELS", {})
        if isinstance(channel, Channel):
            found.update({(channel, message_type): model for message_type, model in models.items()})
    return found


def parse_send_request(body: Any) -> V1Message:
    """Validate a decoded JSON body as a v1 send request, or raise the error Vonage would return."""
    if not isinstance(body, dict):
        raise InvalidParams([InvalidParameter("body", "must be a JSON object.")])
    channel_value = body.get("channel")
    if channel_value is None:
        raise InvalidParams([InvalidParameter("channel", "is required.")])
    try:
        channel = Channel(channel_value)
    except ValueError:
        raise UnsupportedChannel(f"The channel `{channel_value}` is not supported.") from None
    spec = channel_spec(channel)
    if spec is None:
        raise UnsupportedChannel(f"The channel `{channel.value}` is not supported by this Tidings.")
    type_value = body.get("message_type")
    if type_value is None:
        raise InvalidParams([InvalidParameter("message_type", "is required.")])
    try:
        message_type = MessageType(type_value)
    except ValueError:
        message_type = None
    model = request_models().get((channel, message_type)) if message_type in spec.outbound else None
    if model is None:
        raise InvalidMessageType(
            f"The message type `{type_value}` is not supported for the channel `{channel.value}`."
        )
    if body.get("failover") is not None:
        raise InvalidParams([InvalidParameter("failover", "is not supported by this Tidings yet.")])
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidParams(invalid_parameters(error)) from None


def to_message(
    request: V1Message, *, uuid: str, account_id: str, application_id: str | None, created_at: datetime
) -> Message:
    return Message(
        uuid=uuid,
        account_id=account_id,
        application_id=application_id,
        channel=request.channel,
        message_type=request.message_type,
        to=request.to,
        sender=request.from_,
        content=request.to_content(),
        options=request.to_options(),
        context_message_uuid=request.context_message_uuid,
        client_ref=request.client_ref,
        webhook_url=request.webhook_url,
        webhook_version=request.webhook_version,
        ttl=request.ttl_seconds,
        trusted_recipient=request.trusted,
        created_at=created_at,
    )


def request_body_schema() -> dict[str, Any]:
    """The OpenAPI description of the request body: one of the per-channel models."""
    return {
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        inline_definitions(model.model_json_schema(by_alias=True))
                        for model in request_models().values()
                    ]
                }
            }
        },
        "required": True,
    }
