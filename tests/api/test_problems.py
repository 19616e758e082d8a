"""Every error leaves as RFC 7807 JSON in Vonage's shape (spec §10); the body-size guard in front."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from tidings.api.body_limit import BodySizeLimit
from tidings.api.problems import PROBLEM_JSON, install_problem_handlers, problem_body
from tidings.domain.errors import (
    Forbidden,
    InvalidAcceptHeader,
    InvalidJson,
    InvalidMessageType,
    InvalidParameter,
    InvalidParams,
    InvalidSender,
    LowBalance,
    NotFound,
    PayloadTooLarge,
    Throttled,
    TidingsError,
    Unauthorized,
    UnsupportedChannel,
    UnsupportedContentType,
    WrongVerb,
)

BASE = "https://developer.vonage.com/api-errors"
INSTANCE = re.compile(r"^[0-9a-f]{32}$")
LIMIT = 1024

# (error, status, type URL, title): the values the spec's §10 table gives each documented error.
SPEC_TABLE: list[tuple[TidingsError, int, str, str]] = [
    (Unauthorized(), 401, f"{BASE}#unauthorized", "Unauthorized"),
    (LowBalance(), 402, f"{BASE}/#low-balance", "Low balance"),
    (InvalidJson(), 422, f"{BASE}#invalid-json", "The request body did not contain valid JSON"),
    (UnsupportedChannel(), 422, f"{BASE}/messages#1100", "Unsupported channel"),
    (InvalidSender(), 422, f"{BASE}/messages#1120", "Invalid sender"),
    (InvalidMessageType(), 422, f"{BASE}/messages#1140", "Invalid message type"),
    (InvalidParams([]), 422, f"{BASE}/messages#1150", "Invalid params"),
    (Throttled(), 429, f"{BASE}#throttled", "Too many requests"),
    (TidingsError(), 500, f"{BASE}/messages#1000", "Internal error"),
    (NotFound(), 404, f"{BASE}#not-found", "Not Found"),
    (WrongVerb(), 405, f"{BASE}#wrong-verb", "Request method not allowed"),
    (InvalidAcceptHeader(), 406, f"{BASE}#accept-header", "Invalid Accept header"),
    (UnsupportedContentType(), 415, f"{BASE}#content-type-header", "Unsupported Content-Type header"),
    (PayloadTooLarge(), 413, f"{BASE}#payload-too-large", "Payload too large"),
    (Forbidden(), 403, f"{BASE}#forbidden", "Forbidden"),
]
RAISED: dict[str, TidingsError] = {type(error).__name__: error for error, *_ in SPEC_TABLE}


def make_app(max_bytes: int = LIMIT) -> tuple[FastAPI, list[int]]:
    """A small app wired like Tidings': the problem handlers and the body-size guard."""
    app = FastAPI()
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)
    install_problem_handlers(app)
    bodies_read: list[int] = []

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        bodies_read.append(len(body))
        return {"length": len(body)}

    @app.get("/raise/{name}")
    async def raise_error(name: str) -> None:
        raise RAISED[name]

    @app.get("/http/{status}")
    async def raise_http(status: int) -> None:
        raise HTTPException(status, detail="Something specific", headers={"X-Reason": "test"})

    @app.get("/typed")
    async def typed(n: int, flag: bool = False) -> dict[str, Any]:
        return {"n": n, "flag": flag}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    @app.get("/outage/{name}")
    async def outage(name: str) -> None:
        raise OUTAGES[name]

    return app, bodies_read


@pytest.fixture
async def app_and_reads() -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    app, reads = make_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://problems.test") as client:
        yield client, reads


@pytest.fixture
def client(app_and_reads: tuple[httpx.AsyncClient, list[int]]) -> httpx.AsyncClient:
    return app_and_reads[0]


def assert_problem(response: httpx.Response, status: int, type_url: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == type_url
    assert body["title"] == title
    assert isinstance(body["detail"], str) and body["detail"]
    assert INSTANCE.match(body["instance"])
    return dict(body)


# --- the documented errors -----------------------------------------------------------------------


@pytest.mark.parametrize(("error", "status", "type_url", "title"), SPEC_TABLE, ids=list(RAISED))
def test_each_error_carries_the_spec_status_type_and_title(
    error: TidingsError, status: int, type_url: str, title: str
) -> None:
    assert (error.status, error.type_url, error.title) == (status, type_url, title)
    assert error.detail  # a default detail is always there


def test_spec_detail_texts() -> None:
    assert Unauthorized().detail == "You did not provide correct credentials."
    assert InvalidParams([]).detail == "The value of one or more parameters is invalid."
    assert InvalidSender().detail == "The `from` parameter is invalid for the given channel."


def test_problem_body_has_type_title_detail_instance_and_the_extras() -> None:
    error = InvalidParams([InvalidParameter("image.url", "is required.")], detail="custom detail")
    assert problem_body(error, instance="0" * 32) == {
        "type": f"{BASE}/messages#1150",
        "title": "Invalid params",
        "detail": "custom detail",
        "instance": "0" * 32,
        "invalid_parameters": [{"name": "image.url", "reason": "is required."}],
    }


def test_problem_instances_are_fresh_32_hex_trace_ids() -> None:
    instances = {problem_body(Unauthorized())["instance"] for _ in range(100)}
    assert len(instances) == 100
    assert all(INSTANCE.match(instance) for instance in instances)


@pytest.mark.parametrize(("error", "status", "type_url", "title"), SPEC_TABLE, ids=list(RAISED))
async def test_a_raised_error_is_rendered_as_rfc7807(
    client: httpx.AsyncClient, error: TidingsError, status: int, type_url: str, title: str
) -> None:
    response = await client.get(f"/raise/{type(error).__name__}")
    body = assert_problem(response, status, type_url, title)
    assert body["detail"] == error.detail
    assert {"type", "title", "detail", "instance"} <= set(body)


async def test_401_carries_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.get("/raise/Unauthorized")
    assert set(response.json()) == {"type", "title", "detail", "instance"}
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Basic")
    assert "Bearer" in challenge


async def test_only_401_carries_www_authenticate(client: httpx.AsyncClient) -> None:
    assert "www-authenticate" not in (await client.get("/raise/Forbidden")).headers


async def test_429_carries_retry_after_in_header_and_body(client: httpx.AsyncClient) -> None:
    RAISED["Throttled"] = Throttled(retry_after=7)
    try:
        response = await client.get("/raise/Throttled")
    finally:
        RAISED["Throttled"] = Throttled()
    assert_problem(response, 429, f"{BASE}#throttled", "Too many requests")
    assert response.headers["retry-after"] == "7"
    assert response.json()["retry_after"] == 7


async def test_invalid_params_lists_each_parameter(client: httpx.AsyncClient) -> None:
    RAISED["InvalidParams"] = InvalidParams(
        [InvalidParameter("to", "is required."), InvalidParameter("sms.encoding_type", "is wrong.")]
    )
    try:
        response = await client.get("/raise/InvalidParams")
    finally:
        RAISED["InvalidParams"] = InvalidParams([])
    assert response.json()["invalid_parameters"] == [
        {"name": "to", "reason": "is required."},
        {"name": "sms.encoding_type", "reason": "is wrong."},
    ]


# --- framework errors ----------------------------------------------------------------------------


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no/such/thing"), 404, f"{BASE}#not-found", "Not Found")
    assert "/no/such/thing" in body["detail"]


async def test_wrong_verb_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/echo")
    body = assert_problem(response, 405, f"{BASE}#wrong-verb", "Request method not allowed")
    assert "DELETE" in body["detail"]
    assert response.headers["allow"] == "POST"


async def test_other_http_errors_keep_status_headers_and_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/http/409")
    body = assert_problem(response, 409, "about:blank", "Conflict")
    assert body["detail"] == "Something specific"
    assert response.headers["x-reason"] == "test"


async def test_framework_validation_errors_are_invalid_params(client: httpx.AsyncClient) -> None:
    response = await client.get("/typed", params={"n": "abc", "flag": "maybe"})
    body = assert_problem(response, 422, f"{BASE}/messages#1150", "Invalid params")
    assert sorted(p["name"] for p in body["invalid_parameters"]) == ["flag", "n"]
    missing = (await client.get("/typed")).json()
    assert [p["name"] for p in missing["invalid_parameters"]] == ["n"]


OUTAGES: dict[str, Exception] = {
    "refused": ConnectionRefusedError(111, "Connection refused"),
    "starting": asyncpg.CannotConnectNowError("the database system is starting up"),
    "wrapped": DBAPIError(
        "SELECT 1", None, asyncpg.ConnectionDoesNotExistError("closed"), connection_invalidated=True
    ),
}


@pytest.mark.parametrize("name", sorted(OUTAGES))
async def test_a_database_out_of_reach_is_a_503_problem_with_retry_after(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The app's own errors reach this client: a handler that answered and raised again would fail it.
    app, _ = make_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://problems.test") as client:
        response = await client.get(f"/outage/{name}")
    body = assert_problem(response, 503, "about:blank", "Service Unavailable")
    assert response.headers["retry-after"] == "1"
    assert "try again" in body["detail"]
    assert "unhandled error" not in caplog.text


async def test_an_unexpected_exception_is_a_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    body = assert_problem(response, 500, f"{BASE}/messages#1000", "Internal error")
    assert set(body) == {"type", "title", "detail", "instance"}
    assert "internal detail" not in response.text
    assert "RuntimeError" not in response.text


def echo_scope(*, content_length: int) -> Scope:
    """An ASGI scope for a POST to /echo declaring `content_length` bytes of body."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"problems.test"), (b"content-length", str(content_length).encode())],
        "server": ("problems.test", 80),
        "client": ("127.0.0.1", 1234),
    }


async def test_a_client_gone_before_its_body_arrived_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """The front door's body deadline (or the client) ends the request: the app reads a disconnect.
    That is logged at DEBUG; an ERROR with a traceback would page someone for a slow client."""
    app, reads = make_app()
    scope = echo_scope(content_length=100)
    messages: list[Message] = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        pass  # nobody is listening any more

    with caplog.at_level("DEBUG", logger="tidings.api"):
        await app(scope, receive, send)
    assert reads == []
    assert [r.levelname for r in caplog.records if r.name == "tidings.api"] == ["DEBUG"]


# --- the body-size guard -------------------------------------------------------------------------


async def test_a_body_at_the_limit_reaches_the_app(
    app_and_reads: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, reads = app_and_reads
    response = await client.post("/echo", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"length": LIMIT}
    assert reads == [LIMIT]


async def test_a_declared_oversized_body_is_refused_before_the_app_runs(
    app_and_reads: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, reads = app_and_reads
    response = await client.post("/echo", content=b"x" * (LIMIT + 1))
    body = assert_problem(response, 413, f"{BASE}#payload-too-large", "Payload too large")
    assert body["detail"] == f"The request body must not exceed {LIMIT} bytes."
    assert int(response.headers["content-length"]) == len(response.content)
    assert reads == []


async def test_a_streamed_oversized_body_is_refused(
    app_and_reads: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, reads = app_and_reads

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 200

    response = await client.post("/echo", content=chunks())
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, f"{BASE}#payload-too-large", "Payload too large")
    assert reads == []


async def test_a_streamed_body_under_the_limit_passes(
    app_and_reads: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, reads = app_and_reads

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 256

    response = await client.post("/echo", content=chunks())
    assert response.json() == {"length": LIMIT}
    assert reads == [LIMIT]


async def test_an_understated_content_length_does_not_get_past_the_limit() -> None:
    """The declared length is only a shortcut: the bytes actually received are counted too."""
    app, reads = make_app()
    received: list[Message] = []
    body = b"x" * (LIMIT * 3)
    scope = echo_scope(content_length=10)
    chunks = [body[i : i + 512] for i in range(0, len(body), 512)]

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        received.append(message)

    await app(scope, receive, send)
    assert received[0]["type"] == "http.response.start"
    assert received[0]["status"] == 413
    assert json.loads(b"".join(m.get("body", b"") for m in received[1:]))["title"] == "Payload too large"
    assert reads == []


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
async def test_non_http_scopes_pass_through_untouched(scope_type: str) -> None:
    seen: list[str] = []

    async def inner(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        raise AssertionError("the guard must not read from a non-HTTP scope")

    async def send(_message: Message) -> None:
        raise AssertionError("the guard must not answer a non-HTTP scope")

    await BodySizeLimit(inner, max_bytes=1)({"type": scope_type, "headers": []}, receive, send)
    assert seen == [scope_type]


async def test_no_second_response_when_the_app_already_answered() -> None:
    """An app that starts its response before reading the whole body must not get a second
    response start from the guard (an ASGI protocol error)."""

    async def early_answer(_scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.body", "body": b"done"})

    chunks = [b"x" * 600, b"x" * 600]
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    await BodySizeLimit(early_answer, max_bytes=LIMIT)({"type": "http", "headers": []}, receive, send)
    assert [m["type"] for m in sent].count("http.response.start") == 1
    assert sent[0]["status"] == 200
