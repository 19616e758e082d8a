"""Application API v2 (/v2/applications): request bodies and the list query (answers: see
application_responses.py).

Field names, enums and limits follow shared/specs/application.v2.yml, widened by what the SDK's
`vonage_application` models send (voice `signed_callbacks`/`region`/..., `connect_timeout`, the
`verify` capability, messages `version`/`authenticate_inbound_media`). Inside `capabilities`,
members neither source names are kept as sent: Tidings stores and returns every capability
faithfully, and acts only on `messages`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tidings.domain.errors import InvalidApplicationListQuery, InvalidApplicationPayload, InvalidParameter
from tidings.services.applications import ApplicationDraft
from tidings.wire.messages_v1.common import HttpUrl
from tidings.wire.openapi_schema import inline_definitions
from tidings.wire.validation_errors import invalid_parameters

DEFAULT_PAGE_SIZE = 10  # the spec's example; the SDK asks for 100 explicitly
MAX_PAGE_SIZE = 100  # the spec's list-validation example: "must be between 1 and 100"

# Strict: JSON `"true"` is not a boolean, `"500"` not a timeout. Unknown members are kept.
_KEPT = ConfigDict(strict=True, extra="allow")

ConnectTimeout = Annotated[int, Field(ge=300, le=1000)]


class WebhookUrl(BaseModel):
    model_config = _KEPT
    address: HttpUrl
    http_method: Literal["GET", "POST"] | None = None


class PostWebhookUrl(WebhookUrl):
    """Messages and Verify webhooks: the spec's enum and the SDK allow POST only."""

    http_method: Literal["POST"] | None = None


class AnswerUrl(WebhookUrl):
    connection_timeout: ConnectTimeout | None = None  # the spec's name
    connect_timeout: ConnectTimeout | None = None  # the SDK's name
    socket_timeout: Annotated[int, Field(ge=1000, le=5000)] | None = None


class EventUrl(AnswerUrl):
    socket_timeout: Annotated[int, Field(ge=1000, le=10000)] | None = None


class VoiceWebhooks(BaseModel):
    model_config = _KEPT
    answer_url: AnswerUrl | None = None
    fallback_answer_url: AnswerUrl | None = None
    event_url: EventUrl | None = None


class Voice(BaseModel):
    model_config = _KEPT
    webhooks: VoiceWebhooks | None = None
    signed_callbacks: bool | None = None
    conversations_ttl: Annotated[int, Field(ge=1, le=9000)] | None = None
    leg_persistence_time: Annotated[int, Field(ge=1, le=31)] | None = None
    region: Literal["na-east", "na-west", "eu-east", "eu-west", "apac-sng", "apac-australia"] | None = None


class RtcWebhooks(BaseModel):
    model_config = _KEPT
    event_url: WebhookUrl | None = None


class Rtc(BaseModel):
    model_config = _KEPT
    webhooks: RtcWebhooks | None = None
    signed_callbacks: bool | None = None


class MessagesWebhooks(BaseModel):
    model_config = _KEPT
    inbound_url: PostWebhookUrl | None = None
    status_url: PostWebhookUrl | None = None


class Messages(BaseModel):
    model_config = _KEPT
    webhooks: MessagesWebhooks | None = None
    version: Literal["v1", "v0.1"] | None = None
    authenticate_inbound_media: bool | None = None


class Vbc(BaseModel):
    """The spec: "This must be an empty object"."""

    model_config = ConfigDict(strict=True, extra="forbid")


class VerifyWebhooks(BaseModel):
    model_config = _KEPT
    status_url: PostWebhookUrl | None = None


class Verify(BaseModel):
    model_config = _KEPT
    webhooks: VerifyWebhooks | None = None
    version: str | None = None


class Capabilities(BaseModel):
    model_config = _KEPT
    voice: Voice | None = None
    rtc: Rtc | None = None
    messages: Messages | None = None
    vbc: Vbc | None = None
    verify: Verify | None = None


class Privacy(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    improve_ai: bool | None = None


class Keys(BaseModel):
    # A `private_key` sent back (a GET body PUT again) is dropped: Tidings never stores one.
    model_config = ConfigDict(strict=True, extra="ignore")
    public_key: Annotated[str, StringConstraints(max_length=16384)] | None = None


class ApplicationRequest(BaseModel):
    """The body of POST /v2/applications and PUT /v2/applications/{id} (the same schema)."""

    # `id` and `_links` of a GET body sent back are ignored, as is anything else unknown here.
    model_config = ConfigDict(strict=True, extra="ignore")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    keys: Keys | None = None
    capabilities: Capabilities | None = None
    privacy: Privacy | None = None


def parse_application_request(body: Any) -> ApplicationDraft:
    """A decoded JSON body as the application to create or store, or the 400 the spec documents."""
    if not isinstance(body, dict):
        raise InvalidApplicationPayload([InvalidParameter("body", "must be a JSON object.")])
    unstorable = _unstorable_text(body, "")
    if unstorable:
        raise InvalidApplicationPayload(unstorable)
    try:
        request = ApplicationRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidApplicationPayload(_reasons(error)) from None
    privacy = request.privacy.model_dump(exclude_none=True) if request.privacy else {}
    privacy.setdefault("improve_ai", True)  # the spec's default
    return ApplicationDraft(
        name=request.name,
        public_key=request.keys.public_key if request.keys else None,
        capabilities=request.capabilities.model_dump(exclude_none=True) if request.capabilities else {},
        privacy=privacy,
    )


def _reasons(error: ValidationError) -> list[InvalidParameter]:
    found = invalid_parameters(error)
    # Enum reasons in the spec's words: "must be one of: GET, POST".
    choices: dict[str, str] = {}
    for item in error.errors(include_url=False):
        if item["type"] == "extra_forbidden":  # only `vbc` forbids members
            choices[".".join(str(part) for part in item["loc"])] = (
                "is not allowed: vbc must be an empty object."
            )
        if item["type"] == "literal_error":
            name = ".".join(str(part) for part in item["loc"])
            expected = str(item.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
            choices[name] = f"must be one of: {expected}."
    return [InvalidParameter(p.name, choices.get(p.name, p.reason)) for p in found]


MAX_DEPTH = 32  # far deeper than any capability; keeps kept-as-sent members from exhausting the stack


def _unstorable_text(value: Any, path: str, depth: int = 0) -> list[InvalidParameter]:
    """Strings PostgreSQL cannot store (NUL, lone surrogates), in keys or values, and absurd
    nesting, by path."""
    if depth > MAX_DEPTH:
        return [InvalidParameter(path, f"must not be nested more than {MAX_DEPTH} levels deep.")]
    if isinstance(value, str):
        if "\x00" in value or not _encodable(value):
            return [InvalidParameter(path or "body", "must be valid text without NUL characters.")]
        return []
    found: list[InvalidParameter] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key or not _encodable(key):
                found.append(
                    InvalidParameter(path or "body", "must not have a member named with NUL or invalid text.")
                )
                continue
            found.extend(_unstorable_text(item, child, depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_unstorable_text(item, f"{path}.{index}", depth + 1))
    return found


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_PAGE_NUMBER = re.compile(r"[0-9]{1,9}")


def parse_list_query(query: Mapping[str, str]) -> tuple[int, int]:
    """(page, page_size) from the query string, or the spec's 400 list-validation."""
    problems: list[InvalidParameter] = []
    page_size = _positive(query, "page_size", DEFAULT_PAGE_SIZE, problems)
    page = _positive(query, "page", 1, problems)
    if page_size is not None and page_size > MAX_PAGE_SIZE:
        problems.append(InvalidParameter("page_size", f"must be between 1 and {MAX_PAGE_SIZE}."))
    if problems or page is None or page_size is None:
        raise InvalidApplicationListQuery(problems)
    return page, page_size


def _positive(
    query: Mapping[str, str], name: str, default: int, problems: list[InvalidParameter]
) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    if not _PAGE_NUMBER.fullmatch(raw) or int(raw) < 1:
        reason = (
            f"must be between 1 and {MAX_PAGE_SIZE}."
            if name == "page_size"
            else "must be an integer of at least 1."
        )
        problems.append(InvalidParameter(name, reason))
        return None
    return int(raw)


def request_body_schema() -> dict[str, Any]:
    """The OpenAPI request body (parsed by hand so that errors take the spec's 400 shape)."""
    schema = inline_definitions(ApplicationRequest.model_json_schema())
    return {"content": {"application/json": {"schema": schema}}, "required": True}
