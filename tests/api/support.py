"""What the /v1/messages API tests share: credentials, sending and reading back through the API,
linking external accounts, Vonage's problem bodies, and waiting on conditions with a timeout."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from tests.receiver import Received, WebhookReceiver
from tidings.domain.message import Channel, Message
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.services.external_accounts import ExternalAccounts
from tidings.services.webhook_dispatch import SendWebhook
from tidings.store.lookups import Lookups
from tidings.store.tables import jobs

ERRORS = "https://developer.vonage.com/api-errors"


@dataclass(frozen=True)
class Refusing:
    """An API runtime that is only sent requests it refuses (the `refusing` fixture), shared by a
    module's refusal tests (per backend) rather than one started, with an account, for each:
    nothing is ever stored in it, so each test still finds exactly nothing stored after its own
    refusal."""

    runtime: Runtime
    client: httpx.AsyncClient
    account: NewAccountCredentials


INVALID_PARAMS = (f"{ERRORS}/messages#1150", "Invalid params")
NOT_FOUND = (f"{ERRORS}#not-found", "Not Found")
INSTANCE = re.compile(r"^[0-9a-f]{32}$")
V1_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


async def webhook_jobs(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    """The message's `send_webhook` jobs, oldest first: every webhook goes out as one."""
    async with runtime.database.read() as conn:
        query = select(jobs).where(jobs.c.kind == SendWebhook.name).order_by(jobs.c.id)
        rows = (await conn.execute(query)).mappings().all()
    return [row for row in rows if row["payload"].get("message_uuid") == message_uuid]


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def assert_problem(response: httpx.Response, status: int, type_url: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["type"], body["title"]) == (type_url, title), body
    assert isinstance(body["detail"], str) and body["detail"]
    assert INSTANCE.match(body["instance"]), body["instance"]
    return body


def invalid_names(response: httpx.Response) -> list[str]:
    """The wire names a 1150 problem blames, each with a reason."""
    problem = assert_problem(response, 422, *INVALID_PARAMS)
    params = problem["invalid_parameters"]
    assert all(set(p) == {"name", "reason"} and p["reason"] for p in params), params
    return sorted(p["name"] for p in params)


async def send(
    client: httpx.AsyncClient, who: NewAccountCredentials, body: dict[str, Any], **headers: str
) -> str:
    response = await client.post("/v1/messages", json=body, headers={**basic(who), **headers})
    assert response.status_code == 202, response.text
    return str(response.json()["message_uuid"])


async def view(client: httpx.AsyncClient, who: NewAccountCredentials, message_uuid: str) -> dict[str, Any]:
    response = await client.get(f"/v1/messages/{message_uuid}", headers=basic(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until_status(
    client: httpx.AsyncClient, who: NewAccountCredentials, message_uuid: str, status: str
) -> dict[str, Any]:
    """Waits until GET shows the message in `status`; returns that view."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update(await view(client, who, message_uuid))
        return seen["status"] == status

    await until(reached, what=f"{message_uuid} {status}")
    return seen


async def stored_message(runtime: Runtime, message_uuid: str) -> Message:
    """The outbound message as the store gives it back: typed content and channel options."""
    lookups = Lookups(runtime.database)
    try:
        tracked = await lookups.messages.load(message_uuid)
    finally:
        await lookups.close()
    assert tracked is not None
    return tracked.message


async def link(
    runtime: Runtime, account_id: str, channel: Channel, external_id: str, application_id: str | None = None
) -> None:
    await ExternalAccounts(runtime.database).link(
        account_id, channel, external_id, application_id=application_id
    )


async def simulate(
    client: httpx.AsyncClient, who: NewAccountCredentials, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/sim/inbound", json=body, headers=basic(who))


async def webhooks_of(
    receiver: WebhookReceiver, message_uuid: str, count: int, timeout: float = 15.0
) -> list[Received]:
    """Waits for `count` webhooks about one message; returns them in arrival order."""
    return await asyncio.to_thread(
        receiver.wait_matching, lambda r: r.json().get("message_uuid") == message_uuid, count, timeout
    )
