"""POST /v1/messages requests: one model per channel and message type, chosen from the body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tidings.domain.errors import (
    InvalidMessageType,
    InvalidParameter,
    InvalidParams,
    UnsupportedChannel,
)
from tidings.domain.message import Channel, Message, MessageType
from tidings.wire.messages_v1 import sms
from tidings.wire.messages_v1.common import V1Message
from tidings.wire.openapi_schema import inline_definitions
from tidings.wire.validation_errors import invalid_parameters

# Adding a channel adds its module here.
REQUEST_MODELS: dict[tuple[Channel, MessageType], type[V1Message]] = {**sms.MODELS}
_CHANNELS_SERVED = frozenset(channel for channel, _ in REQUEST_MODELS)


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
    if channel not in _CHANNELS_SERVED:
        raise UnsupportedChannel(f"The channel `{channel.value}` is not enabled on this Tidings.")
    type_value = body.get("message_type")
    if type_value is None:
        raise InvalidParams([InvalidParameter("message_type", "is required.")])
    try:
        model = REQUEST_MODELS[(channel, MessageType(type_value))]
    except (ValueError, KeyError):
        raise InvalidMessageType(
            f"The message type `{type_value}` is not supported for the channel `{channel.value}`."
        ) from None
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
        content=request.content(),
        options=request.options(),
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
                        for model in REQUEST_MODELS.values()
                    ]
                }
            }
        },
        "required": True,
    }
