"""`Idempotency-Key` on POST /v1/messages: a repeat is answered with the first message's uuid and
stores nothing; the key with another body is refused; keys are per account; racing repeats meet
at one message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.api.channel_cases import body
from tests.api.support import basic, invalid_names
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import idempotency_keys, jobs, messages

REQUEST = body(
    "whatsapp", "text", text="your order shipped", client_ref="order-7", context={"message_uuid": "q"}
)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The API role only: what is stored is exactly what the sends stored."""
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def post(
    client: httpx.AsyncClient, who: NewAccountCredentials, key: str | bytes | None, content: Any = REQUEST
) -> httpx.Response:
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    headers: dict[str, Any] = {**basic(who), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/v1/messages", content=raw, headers=headers)


async def stored(runtime: Runtime) -> tuple[int, int, int]:
    """Messages, jobs and idempotency keys stored."""
    counts = []
    async with runtime.database.read() as conn:
        for table in (messages, jobs, idempotency_keys):
            counts.append((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    return counts[0], counts[1], counts[2]


def accepted(response: httpx.Response, *, replayed: bool) -> str:
    assert response.status_code == 202, response.text
    assert list(response.json()) == ["message_uuid"]
    assert response.headers.get("idempotent-replayed") == ("true" if replayed else None)
    return str(response.json()["message_uuid"])


async def test_the_same_key_and_body_answer_with_the_first_message(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    first = accepted(await post(client, account, "order-7-send"), replayed=False)
    # The same request spelled otherwise: members reordered, nested ones too, other white space.
    reordered = {key: REQUEST[key] for key in reversed(REQUEST)} | {"context": {"message_uuid": "q"}}
    spelled = json.dumps(reordered, indent=4, ensure_ascii=True).encode()
    assert spelled != json.dumps(REQUEST).encode()
    for content in (REQUEST, spelled):
        assert accepted(await post(client, account, "order-7-send", content), replayed=True) == first
    assert await stored(runtime) == (1, 1, 1)


async def test_a_key_is_kept_for_24_hours_only(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    """Past its day a key is free again, whether or not the periodic clean-up has removed it yet."""
    first = accepted(await post(client, account, "daily"), replayed=False)
    async with runtime.database.begin() as conn:
        just_kept = datetime.now(UTC) - timedelta(hours=23, minutes=59)
        await conn.execute(update(idempotency_keys).values(created_at=just_kept))
    assert accepted(await post(client, account, "daily"), replayed=True) == first
    async with runtime.database.begin() as conn:
        await conn.execute(
            update(idempotency_keys).values(created_at=datetime.now(UTC) - timedelta(hours=24, minutes=1))
        )
    second = accepted(await post(client, account, "daily", {**REQUEST, "text": "a new day"}), replayed=False)
    assert second != first
    assert (
        accepted(await post(client, account, "daily", {**REQUEST, "text": "a new day"}), replayed=True)
        == second
    )
    assert await stored(runtime) == (2, 2, 1)


async def test_without_a_key_every_send_is_a_new_message(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    sent = {accepted(await post(client, account, None), replayed=False) for _ in range(2)}
    assert len(sent) == 2
    assert await stored(runtime) == (2, 2, 0)


@pytest.mark.parametrize(
    "other",
    [
        {**REQUEST, "text": "your order shipped!"},
        {**REQUEST, "client_ref": "order-8"},
        {**REQUEST, "context": {"message_uuid": "r"}},
        {key: value for key, value in REQUEST.items() if key != "client_ref"},
    ],
    ids=["text", "client-ref", "nested", "member-dropped"],
)
async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, other: dict[str, Any]
) -> None:
    accepted(await post(client, account, "k-1"), replayed=False)
    response = await post(client, account, "k-1", other)
    assert invalid_names(response) == ["Idempotency-Key"]
    assert "different request" in response.json()["invalid_parameters"][0]["reason"]
    assert await stored(runtime) == (1, 1, 1)


async def test_keys_are_per_account(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    other = await create_account(runtime.database, runtime.box, name="other")
    mine = accepted(await post(client, account, "shared-key"), replayed=False)
    theirs = accepted(await post(client, other, "shared-key", {**REQUEST, "text": "theirs"}), replayed=False)
    assert mine != theirs
    assert (
        accepted(await post(client, other, "shared-key", {**REQUEST, "text": "theirs"}), replayed=True)
        == theirs
    )
    assert await stored(runtime) == (2, 2, 2)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "k" * 256,
        "has space",
        " leading",
        "tab\there",
        "ключ".encode(),
        "caf\xe9".encode("latin-1"),
        b"nul\x7f",
    ],
    ids=["empty", "256-chars", "space", "leading-space", "tab", "cyrillic-utf8", "latin-1", "del"],
)
async def test_a_bad_key_is_refused_before_anything_is_stored(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, key: str | bytes
) -> None:
    assert invalid_names(await post(client, account, key)) == ["Idempotency-Key"]
    assert await stored(runtime) == (0, 0, 0)


@pytest.mark.parametrize(
    "key", ["k" * 255, "!", "~", "a-Z_0.9:/+=@"], ids=["255", "bang", "tilde", "punctuation"]
)
async def test_any_printable_ascii_key_up_to_255_is_taken(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, key: str
) -> None:
    first = accepted(await post(client, account, key), replayed=False)
    assert accepted(await post(client, account, key), replayed=True) == first


async def test_a_refused_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    invalid = {**REQUEST, "text": ""}
    assert invalid_names(await post(client, account, "retry-me", invalid)) == ["text"]
    assert await stored(runtime) == (0, 0, 0)
    accepted(await post(client, account, "retry-me"), replayed=False)


@pytest.mark.parametrize("racers", [2, 6])
async def test_concurrent_requests_with_one_key_make_one_message(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, racers: int
) -> None:
    responses = await asyncio.gather(*(post(client, account, "race") for _ in range(racers)))
    assert all(response.status_code == 202 for response in responses), [r.text for r in responses]
    assert len({response.json()["message_uuid"] for response in responses}) == 1
    replays = [response.headers.get("idempotent-replayed") for response in responses]
    assert sorted(replays, key=str) == [None] + ["true"] * (racers - 1)
    assert await stored(runtime) == (1, 1, 1)
