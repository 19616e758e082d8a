"""The log lines of HTTP requests, over real HTTP: one access line each with its fields and no
secret, a line per accepted message, a 500 logged once, a client that hangs up at DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.live import serving
from tests.api.support import basic, until
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.logs import JsonFormatter
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account

SERVER_LOGGERS = ("tidings", "uvicorn")
SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "hi"}


class Lines(logging.Handler):
    """Every record of the process, as the JSON lines production writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(SERVER_LOGGERS):
            return  # the test's own HTTP client logs the URLs it asks for, secrets and all
        line = self.format(record)
        self.text.append(line)
        self.lines.append(json.loads(line))

    def of(self, logger: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            if line["logger"] == logger and all(line.get(k) == v for k, v in fields.items())
        ]


@pytest.fixture
def lines() -> Iterator[Lines]:
    root, ours = logging.getLogger(), logging.getLogger("tidings")
    handler, levels = Lines(), (root.level, ours.level)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


async def test_each_request_has_an_access_line_without_secrets(
    runtime: Runtime, account: NewAccountCredentials, lines: Lines
) -> None:
    async with serving(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
        sent = await http.post("/v1/messages", json=SMS, headers=basic(account))
        assert sent.status_code == 202, sent.text
        query = {"api_key": account.api_key, "api_secret": account.api_secret}
        balance = await http.get("/account/get-balance", params=query)
        assert balance.status_code == 200, balance.text
        refused = await http.get("/v2/applications", headers={"Authorization": "Basic bm8tc3VjaDprZXk="})
        assert refused.status_code == 401

    (send,) = lines.of("tidings.access", method="POST", path="/v1/messages")
    assert send["status"] == 202
    assert send["api_key"] == account.api_key
    assert isinstance(send["latency_ms"], float) and 0 < send["latency_ms"] < 10_000
    assert send["client"] == "127.0.0.1"
    # The accepted message is named on its request's access line: one line a send.
    assert (send["message_uuid"], send["channel"], send["replayed"]) == (
        sent.json()["message_uuid"],
        "sms",
        False,
    )
    assert not lines.of("tidings.messages", message="message accepted")
    # The path without its query string, which carried the secret.
    (rest,) = lines.of("tidings.access", path="/account/get-balance")
    assert (rest["status"], rest["api_key"]) == (200, account.api_key)
    (unauthorized,) = lines.of("tidings.access", path="/v2/applications")
    assert (unauthorized["status"], unauthorized["api_key"]) == (401, None)
    everything = "\n".join(lines.text)
    assert account.api_secret not in everything
    assert account.signature_secret not in everything


async def test_without_access_lines_an_accepted_message_has_a_line_of_its_own(
    settings: Settings, lines: Lines
) -> None:
    runtime = Runtime(settings.model_copy(update={"log_access": False}))
    await runtime.start()
    try:
        account = await create_account(runtime.database, runtime.box, name="quiet")
        async with serving(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
            sent = await http.post("/v1/messages", json=SMS, headers=basic(account))
            assert sent.status_code == 202, sent.text
    finally:
        await runtime.stop()
    assert not lines.of("tidings.access")
    (accepted,) = lines.of("tidings.messages", message="message accepted")
    assert accepted["message_uuid"] == sent.json()["message_uuid"]
    assert (accepted["channel"], accepted["api_key"]) == ("sms", account.api_key)


async def test_an_unexpected_error_is_answered_500_and_logged_once(
    runtime: Runtime, account: NewAccountCredentials, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    # One on the send path (answered before FastAPI), one through FastAPI's own error handling.
    monkeypatch.setattr(runtime.submitter, "submit", broken)
    monkeypatch.setattr(runtime.updates, "update", broken)
    async with serving(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
        send = await http.post("/v1/messages", json=SMS, headers=basic(account))
        patch = await http.patch(
            "/v1/messages/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
            json={"status": "read"},
            headers=basic(account),
        )
    for response in (send, patch):
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")
    errors = [line for line in lines.lines if line["level"] == "error"]
    assert [line["message"] for line in errors] == [
        "unhandled error on POST /v1/messages",
        "unhandled error on PATCH /v1/messages/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    ]
    assert all("the disk caught fire" in line["exception"] for line in errors)
    assert [line["status"] for line in lines.of("tidings.access")] == [500, 500]


async def test_a_client_that_hangs_up_mid_body_is_a_debug_line(
    runtime: Runtime, account: NewAccountCredentials, lines: Lines
) -> None:
    async with serving(create_app(runtime)) as url:
        address = urlsplit(url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        authorization = basic(account)["Authorization"]
        writer.write(
            (
                "POST /v1/messages HTTP/1.1\r\nHost: tidings\r\nContent-Type: application/json\r\n"
                f"Authorization: {authorization}\r\nContent-Length: 1000\r\n\r\n"
                '{"channel": "sms", '
            ).encode()
        )
        await writer.drain()

        async def body_awaited() -> bool:
            return bool(lines.of("tidings.api", message="client disconnected during POST /v1/messages"))

        # The server waits for the rest of the body; hang up while it does.
        await asyncio.sleep(0)
        writer.close()
        await writer.wait_closed()
        await until(body_awaited, timeout=5, what="the disconnect noticed")
        del reader
        await until(lambda: _true(lines.of("tidings.access", path="/v1/messages")), what="its access line")
    (disconnected,) = lines.of("tidings.api", message="client disconnected during POST /v1/messages")
    assert disconnected["level"] == "debug"
    assert [line for line in lines.lines if line["level"] in ("error", "critical")] == []
    assert not any("exception" in line for line in lines.lines)
    (access,) = lines.of("tidings.access", path="/v1/messages")
    assert access["status"] == 499


async def _true(value: object) -> bool:
    return bool(value)
