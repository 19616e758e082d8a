"""POST /v1/messages: the Messages API v1 send endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tidings.api.dependencies import get_runtime, json_body, principal
from tidings.domain.ids import new_uuid
from tidings.wire.messages_v1 import parse_send_request, request_body_schema, to_message
from tidings.wire.responses import ProblemDetails, SendMessageResponse

router = APIRouter(tags=["Messages v1"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "description": description}
    for status, description in {
        401: "Missing or wrong credentials",
        402: "Low balance",
        413: "Body too large",
        415: "Not JSON",
        422: "Invalid request",
        429: "Throttled",
    }.items()
}


@router.post(
    "/v1/messages",
    status_code=202,
    response_model=SendMessageResponse,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema()},
    summary="Send a message",
)
async def send_message(request: Request) -> JSONResponse:
    # The send path is what users measure: its steps are called directly rather than declared as
    # dependencies, which FastAPI would resolve per request at a measurable cost.
    runtime = get_runtime(request)
    # Pending from arrival, not only once queued for the commit: while it authenticates (a Redis
    # round trip for a JWT) a background write would otherwise take the write lock, and under
    # load every send would wait out a worker transaction.
    with runtime.database.urgent_demand():
        caller = await principal(request)
        parsed = parse_send_request(await json_body(request))
        message = to_message(
            parsed,
            uuid=new_uuid(),
            account_id=caller.account.api_key,
            application_id=caller.application_id,
            created_at=datetime.now(UTC),
        )
        await runtime.submitter.submit(message, caller.account)
    return JSONResponse({"message_uuid": message.uuid}, status_code=202)


DIRECT_ROUTES = {("POST", "/v1/messages"): send_message}
