"""GET /v1/messages/{uuid} and GET /v1/messages (Tidings extensions): one message with its content,
usage and status history; a filtered list, newest first, paged by cursor; each account sees only
its own."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.api.channel_cases import body
from tests.api.support import (
    ERRORS,
    NOT_FOUND,
    V1_TIMESTAMP,
    Refusing,
    assert_problem,
    basic,
    invalid_names,
    link,
    send,
    simulate,
    until_status,
    view,
)
from tidings.domain.message import Channel
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import messages

REFUSED, ABSENT, NEVER_READ, SILENT = "447700909901", "447700909902", "447700909904", "447700909905"
BUSINESS, USER = "447700900500", "447700900123"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def listing(client: httpx.AsyncClient, who: NewAccountCredentials, **query: Any) -> dict[str, Any]:
    response = await client.get("/v1/messages", params=query, headers=basic(who))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"messages", "next_cursor"}
    return page


async def uuids(client: httpx.AsyncClient, who: NewAccountCredentials, **query: Any) -> list[str]:
    return [message["message_uuid"] for message in (await listing(client, who, **query))["messages"]]


async def created_at(runtime: Runtime, moments: dict[str, datetime]) -> None:
    """Places messages in time, so that date filters and ordering have something to tell apart."""
    async with runtime.database.begin() as conn:
        for message_uuid, moment in moments.items():
            await conn.execute(
                update(messages).where(messages.c.uuid == message_uuid).values(created_at=moment)
            )


# --- one message ---------------------------------------------------------------------------------


async def test_one_message_with_its_content_usage_and_history(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    request = body("sms", "text", text="where are you?", to=ABSENT, client_ref="look-1")
    message_uuid = await send(client, account, request)
    shown = await until_status(client, account, message_uuid, "undeliverable")

    created, updated = shown.pop("created_at"), shown.pop("updated_at")
    assert V1_TIMESTAMP.match(created) and V1_TIMESTAMP.match(updated) and created <= updated
    history = shown.pop("history")
    error = {"type": f"{ERRORS}/messages#1190", "title": "1190", "detail": history[-1]["error"]["detail"]}
    assert error["detail"]
    assert shown == {
        "message_uuid": message_uuid,
        "direction": "outbound",
        "channel": "sms",
        "message_type": "text",
        "to": ABSENT,
        "from": "Acme",
        "text": "where are you?",
        "client_ref": "look-1",
        "status": "undeliverable",
        "error": error,
        "usage": shown["usage"],
        "sms": {"count_total": "1"},
        "_links": {"self": {"href": f"/v1/messages/{message_uuid}"}},
    }
    assert set(shown["usage"]) == {"currency", "price"} and float(shown["usage"]["price"]) > 0
    assert [entry["status"] for entry in history] == ["submitted", "undeliverable"]
    assert "error" not in history[0] and history[1]["error"] == error
    assert all(V1_TIMESTAMP.match(entry["timestamp"]) for entry in history)
    assert created <= history[0]["timestamp"] <= history[1]["timestamp"] <= updated


async def test_an_inbound_message_is_shown_in_the_same_vocabulary(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await link(runtime, account.api_key, Channel.WHATSAPP, BUSINESS)
    location = {"lat": 51.5, "long": -0.12, "name": "Shop"}
    arrived = await simulate(
        client,
        account,
        {
            "channel": "whatsapp",
            "from": USER,
            "to": BUSINESS,
            "message_type": "location",
            "location": location,
        },
    )
    message_uuid = arrived.json()["message_uuid"]
    shown = await view(client, account, message_uuid)
    assert (shown["direction"], shown["channel"], shown["message_type"]) == (
        "inbound",
        "whatsapp",
        "location",
    )
    assert (shown["to"], shown["from"], shown["status"]) == (BUSINESS, USER, "delivered")
    assert shown["location"] == location
    assert shown["usage"] == {"currency": "EUR", "price": "0"}
    assert [entry["status"] for entry in shown["history"]] == ["delivered"]


async def test_an_unknown_and_another_accounts_message_are_the_same_404(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    theirs = await send(client, account, body("sms", "text", text="mine"))
    intruder = await create_account(runtime.database, runtime.box, name="intruder")
    unknown = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    foreign = assert_problem(
        await client.get(f"/v1/messages/{theirs}", headers=basic(intruder)), 404, *NOT_FOUND
    )
    missing = assert_problem(
        await client.get(f"/v1/messages/{unknown}", headers=basic(intruder)), 404, *NOT_FOUND
    )
    assert set(foreign) == set(missing)
    assert foreign["detail"].replace(theirs, unknown) == missing["detail"]
    assert (await client.get(f"/v1/messages/{theirs}")).status_code == 401


# --- the list ------------------------------------------------------------------------------------


@pytest.fixture
async def corpus(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> dict[str, str]:
    """Messages of one account in known states and places in time (T0 + n minutes), and one of
    another account that matches most filters but must never show."""
    sent = {
        "rejected_sms": body("sms", "text", text="1", to=REFUSED, client_ref="a"),
        "submitted_sms": body("sms", "text", text="2", to=SILENT, client_ref="b"),
        "delivered_whatsapp": body("whatsapp", "text", text="3", to=NEVER_READ, client_ref="b"),
        "submitted_rcs": body("rcs", "text", text="4", to=SILENT),
    }
    made = {name: await send(client, account, request) for name, request in sent.items()}
    await link(runtime, account.api_key, Channel.WHATSAPP, BUSINESS)
    arrived = await simulate(
        client, account, {"channel": "whatsapp", "from": USER, "to": BUSINESS, "text": "5"}
    )
    made["inbound_whatsapp"] = arrived.json()["message_uuid"]
    for name, status in [
        ("rejected_sms", "rejected"),
        ("submitted_sms", "submitted"),
        ("delivered_whatsapp", "delivered"),
        ("submitted_rcs", "submitted"),
    ]:
        await until_status(client, account, made[name], status)
    await created_at(runtime, {made[name]: T0 + timedelta(minutes=n) for n, name in enumerate(made)})
    other = await create_account(runtime.database, runtime.box, name="other")
    foreign = await send(client, other, body("sms", "text", text="x", to=SILENT, client_ref="b"))
    await created_at(runtime, {foreign: T0 + timedelta(minutes=2)})
    return made


FILTERS = [
    ({}, ["inbound_whatsapp", "submitted_rcs", "delivered_whatsapp", "submitted_sms", "rejected_sms"]),
    ({"to": SILENT}, ["submitted_rcs", "submitted_sms"]),
    ({"from": "Acme"}, ["submitted_sms", "rejected_sms"]),
    ({"from": USER}, ["inbound_whatsapp"]),
    ({"channel": "whatsapp"}, ["inbound_whatsapp", "delivered_whatsapp"]),
    ({"channel": "mms"}, []),
    ({"status": "submitted"}, ["submitted_rcs", "submitted_sms"]),
    ({"status": "rejected"}, ["rejected_sms"]),
    ({"status": "delivered"}, ["inbound_whatsapp", "delivered_whatsapp"]),
    ({"client_ref": "b"}, ["delivered_whatsapp", "submitted_sms"]),
    ({"direction": "inbound"}, ["inbound_whatsapp"]),
    ({"direction": "outbound"}, ["submitted_rcs", "delivered_whatsapp", "submitted_sms", "rejected_sms"]),
    ({"date_start": "2025-03-01T12:02:00Z"}, ["inbound_whatsapp", "submitted_rcs", "delivered_whatsapp"]),
    ({"date_end": "2025-03-01T12:02:00Z"}, ["submitted_sms", "rejected_sms"]),
    (
        {"date_start": "2025-03-01T14:01:00+02:00", "date_end": "2025-03-01T12:03:00"},
        ["delivered_whatsapp", "submitted_sms"],
    ),
    ({"channel": "sms", "status": "submitted", "client_ref": "b"}, ["submitted_sms"]),
    ({"to": SILENT, "direction": "inbound"}, []),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[str(query) for query, _ in FILTERS])
async def test_each_filter_finds_exactly_its_messages_newest_first(
    client: httpx.AsyncClient,
    account: NewAccountCredentials,
    corpus: dict[str, str],
    query: dict[str, str],
    expected: list[str],
) -> None:
    found = await listing(client, account, **query)
    assert [message["message_uuid"] for message in found["messages"]] == [corpus[name] for name in expected]
    assert found["next_cursor"] is None
    for message in found["messages"]:  # each entry is the same view GET gives one message
        assert message == await view(client, account, message["message_uuid"])


async def test_cursor_paging_walks_every_message_once_in_order(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    made = [await send(client, account, body("sms", "text", text=str(n), to=SILENT)) for n in range(9)]
    # Ties on created_at, which only the uuid orders: a page may end in the middle of one.
    await created_at(runtime, {uuid: T0 + timedelta(minutes=n // 3) for n, uuid in enumerate(made)})
    expected = sorted(made, key=lambda uuid: (made.index(uuid) // 3, uuid), reverse=True)

    walked: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"page_size": 2} | ({"cursor": cursor} if cursor else {})
        page = await listing(client, account, **query)
        pages += 1
        walked += [message["message_uuid"] for message in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["messages"]) == 2
    assert walked == expected
    assert pages == 5
    # A filter holds across pages.
    first = await listing(client, account, page_size=4, to=SILENT, direction="outbound")
    second = await listing(
        client, account, page_size=4, to=SILENT, direction="outbound", cursor=first["next_cursor"]
    )
    assert [m["message_uuid"] for m in first["messages"] + second["messages"]] == expected[:8]


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"cursor": "not a cursor"}, ["cursor"]),
        ({"cursor": _cursor(b'["2025-03-01T12:00:00", "u"]')}, ["cursor"]),  # no time zone
        ({"cursor": _cursor(b'["yesterday", "u"]')}, ["cursor"]),
        ({"cursor": _cursor(b'["2025-03-01T12:00:00+00:00", 7]')}, ["cursor"]),
        ({"cursor": _cursor(b'{"a": 1}')}, ["cursor"]),
        ({"cursor": _cursor(b"\xff\xfe")}, ["cursor"]),
        ({"cursor": "c" * 201}, ["cursor"]),
        ({"page_size": 0}, ["page_size"]),
        ({"page_size": 501}, ["page_size"]),
        ({"page_size": "ten"}, ["page_size"]),
        ({"channel": "fax"}, ["channel"]),
        ({"status": "sent"}, ["status"]),
        ({"direction": "sideways"}, ["direction"]),
        ({"date_start": "last week"}, ["date_start"]),
        ({"date_end": "2025-13-01"}, ["date_end"]),
        ({"to": "4477\x00"}, ["to"]),
        ({"from": "\x00"}, ["from"]),
        ({"client_ref": "a\x00b"}, ["client_ref"]),
        ({"to": "1" * 101}, ["to"]),
        ({"channel": "fax", "status": "sent", "page_size": -1}, ["channel", "page_size", "status"]),
    ],
    ids=str,
)
async def test_an_invalid_filter_or_cursor_is_422_naming_it(
    refusing: Refusing, query: dict[str, Any], names: list[str]
) -> None:
    response = await refusing.client.get("/v1/messages", params=query, headers=basic(refusing.account))
    assert invalid_names(response) == names


async def test_each_account_lists_only_its_own(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, corpus: dict[str, str]
) -> None:
    other = await create_account(runtime.database, runtime.box, name="third")
    assert await uuids(client, other) == []
    assert await uuids(client, other, client_ref="b") == []
    mine = await send(client, other, body("sms", "text", text="x", client_ref="b"))
    assert await uuids(client, other) == [mine]
    assert mine not in await uuids(client, account, page_size=500)
    assert (await client.get("/v1/messages")).status_code == 401
