"""/v1/messages: send (POST), update (PATCH), and, beyond Vonage, look up one or list them (GET)."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from tidings.api.access_log import add_to_access_line
from tidings.api.dependencies import get_runtime, json_body, principal
from tidings.api.problems import documented_problems
from tidings.api.send_metrics import count_refused_send
from tidings.domain.errors import InvalidParameter, InvalidParams, NotFound
from tidings.domain.history import MessageFilter
from tidings.domain.ids import new_time_ordered_uuid
from tidings.domain.message import Channel, Direction, Status
from tidings.domain.principal import Principal
from tidings.logs import log_line
from tidings.metrics import ACCEPTED, REPLAYED
from tidings.services.submission import IdempotencyKey
from tidings.store import message_views
from tidings.wire.message_updates import parse_update_request
from tidings.wire.message_views import (
    MessageListResponse,
    MessageViewResponse,
    decode_cursor,
    encode_cursor,
    render_view,
)
from tidings.wire.messages_v1 import parse_send_request, request_body_schema, to_message
from tidings.wire.responses import SendMessageResponse

log = logging.getLogger("tidings.messages")
router = APIRouter(tags=["Messages v1"])
extensions = APIRouter(tags=["Messages v1: Tidings extensions"])


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Missing or wrong credentials",
        402: "Low balance",
        404: "No such message in this account",
        413: "Body too large",
        415: "Not JSON",
        422: "Invalid request",
        429: "Throttled",
        503: "Something Tidings needs (the provider, its database) cannot be reached now; try again",
    }
    return documented_problems({status: described[status] for status in statuses})


def _idempotency_key(request: Request, body: Any) -> IdempotencyKey | None:
    """Stripe's `Idempotency-Key`: any printable ASCII up to 255 characters. The request is
    matched by its content (canonical JSON), so key order and white space do not count."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all("!" <= ch <= "~" for ch in key):
        reason = "must be 1 to 255 printable ASCII characters without spaces."
        raise InvalidParams([InvalidParameter("Idempotency-Key", reason)])
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return IdempotencyKey(key, hashlib.sha256(canonical.encode()).hexdigest())


@router.post(
    "/v1/messages",
    status_code=202,
    response_model=SendMessageResponse,
    responses=_errors(401, 402, 413, 415, 422, 429, 503),
    openapi_extra={
        "requestBody": request_body_schema(),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Tidings extension: the same key with the same body within 24 hours answers "
                "with the first message's uuid and sends nothing again; with another body it is refused (422).",
            }
        ],
    },
    summary="Send a message",
)
async def send_message(request: Request) -> Response:
    # The send path is what users measure: its steps are called directly rather than declared as
    # dependencies, which FastAPI would resolve per request at a measurable cost.
    runtime = get_runtime(request)
    body: Any = None
    # Pending from arrival, not only once queued for the commit: while it authenticates (a Redis
    # round trip for a JWT) a background write would otherwise take the write lock, and under
    # load every send would wait out a worker transaction.
    try:
        with runtime.database.urgent_demand():
            caller = await principal(request)
            body = await json_body(request)
            parsed = parse_send_request(body)
            message = to_message(
                parsed,
                uuid=new_time_ordered_uuid(),
                account_id=caller.account.api_key,
                application_id=caller.application_id,
                created_at=datetime.now(UTC),
            )
            idempotency = _idempotency_key(request, body)
            # Past validation, so a malformed request costs no share of the rate; before the
            # write, so a refused send stores nothing.
            await runtime.send_limits.check(caller)
            accepted = await runtime.submitter.submit(message, caller.account, idempotency)
    except Exception as error:
        count_refused_send(body, error)
        raise
    channel = message.channel.value
    (REPLAYED if accepted.replayed else ACCEPTED)[channel].inc()
    if runtime.settings.log_access:  # the request's access line says it
        add_to_access_line(
            request.scope, message_uuid=accepted.message_uuid, channel=channel, replayed=accepted.replayed
        )
    else:
        fields = {"message_uuid": accepted.message_uuid, "channel": channel, "api_key": message.account_id}
        log_line(log, logging.INFO, "message replayed" if accepted.replayed else "message accepted", fields)
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else None
    # orjson rather than JSONResponse's json.dumps with its options: the same bytes for this
    # body, in a third of the time, on the route that answers most.
    answer = orjson.dumps({"message_uuid": accepted.message_uuid})
    return Response(answer, status_code=202, headers=headers, media_type="application/json")


Caller = Annotated[Principal, Depends(principal)]
_NO_NUL = r"^[^\x00]*$"
MessageUuid = Annotated[str, Path(max_length=100, description="The message's uuid")]


@router.patch(
    "/v1/messages/{message_uuid}",
    responses=_errors(401, 404, 415, 422, 503),
    summary="Mark an inbound WhatsApp message read, or revoke an outbound RCS message",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {
                            "status": {"type": "string", "enum": ["read", "revoked"]},
                            "replying_indicator": {
                                "type": "object",
                                "properties": {"show": {"type": "boolean"}, "type": {"type": "string"}},
                            },
                        },
                    }
                }
            },
        }
    },
)
async def update_message(request: Request, caller: Caller, message_uuid: MessageUuid) -> JSONResponse:
    update = parse_update_request(await json_body(request))
    await get_runtime(request).updates.update(caller.account.api_key, message_uuid, update)
    return JSONResponse({}, status_code=200)


@extensions.get(
    "/v1/messages/{message_uuid}",
    response_model=MessageViewResponse,
    response_model_by_alias=True,
    responses=_errors(401, 404),
    summary="Look up a message with its status history (Tidings extension)",
)
async def get_message(request: Request, caller: Caller, message_uuid: MessageUuid) -> JSONResponse:
    async with get_runtime(request).database.read() as conn:
        view = await message_views.get_view(conn, message_uuid, caller.account.api_key)
    if view is None:
        raise NotFound(f"No message {message_uuid} was found.")
    return JSONResponse(render_view(view))


@extensions.get(
    "/v1/messages",
    response_model=MessageListResponse,
    responses=_errors(401, 422),
    summary="List messages, newest first, with filters and cursor paging (Tidings extension)",
)
async def list_messages(
    request: Request,
    caller: Caller,
    to: Annotated[str | None, Query(max_length=100, pattern=_NO_NUL)] = None,
    sender: Annotated[str | None, Query(alias="from", max_length=100, pattern=_NO_NUL)] = None,
    channel: Channel | None = None,
    status: Status | None = None,
    client_ref: Annotated[str | None, Query(max_length=100, pattern=_NO_NUL)] = None,
    direction: Direction | None = None,
    date_start: Annotated[datetime | None, Query(description="Created at or after (ISO 8601)")] = None,
    date_end: Annotated[datetime | None, Query(description="Created before (ISO 8601)")] = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> JSONResponse:
    where = MessageFilter(
        to=to,
        sender=sender,
        channel=channel,
        status=status,
        client_ref=client_ref,
        direction=direction,
        created_from=_utc(date_start),
        created_before=_utc(date_end),
    )
    after = decode_cursor(cursor) if cursor else None
    async with get_runtime(request).database.read() as conn:
        views = await message_views.list_views(
            conn, caller.account.api_key, where, after=after, limit=page_size + 1
        )
    page, more = views[:page_size], len(views) > page_size
    return JSONResponse(
        {
            "messages": [render_view(view) for view in page],
            "next_cursor": encode_cursor(page[-1]) if more else None,
        }
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


DIRECT_ROUTES = {("POST", "/v1/messages"): send_message}
