"""PATCH /v1/messages/{uuid} bodies: `{"status": "read"}` (with an optional replying indicator, as
the SDKs send it) or `{"status": "revoked"}`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Strict, ValidationError

from tidings.domain.channel_registry import MessageUpdate, UpdateStatus
from tidings.domain.errors import InvalidParameter, InvalidParams
from tidings.wire.validation_errors import invalid_parameters


class ReplyingIndicator(BaseModel):
    model_config = ConfigDict(extra="ignore")

    show: Annotated[bool, Strict()]
    type: Literal["text"] = "text"


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: UpdateStatus
    replying_indicator: ReplyingIndicator | None = None


def parse_update_request(body: Any) -> MessageUpdate:
    if not isinstance(body, dict):
        raise InvalidParams([InvalidParameter("body", "must be a JSON object.")])
    try:
        request = UpdateRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidParams(invalid_parameters(error)) from None
    indicator = request.replying_indicator
    return MessageUpdate(request.status, show_replying_indicator=bool(indicator and indicator.show))
