"""PATCH /v1/messages/{uuid}: mark an inbound WhatsApp message read (with or without a replying
indicator), revoke an outbound RCS message before it is delivered, and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.api.channel_cases import body
from tests.api.support import (
    NOT_FOUND,
    assert_problem,
    basic,
    invalid_names,
    link,
    send,
    simulate,
    until,
    until_status,
    view,
    webhook_jobs,
    webhooks_of,
)
from tests.receiver import WebhookReceiver
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.domain.channel_registry import MessageUpdate, UpdateStatus
from tidings.domain.events import Receipt
from tidings.domain.message import Channel, MessageRecord, Status
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import jobs, message_parts, messages

BUSINESS = "447700900500"  # the account's WhatsApp business number (an external account)
USER = "447700900123"
SILENT = "447700909905"  # the simulated handset never answers: submitted, and nothing more
NEVER_READ = "447700909904"  # delivered, never read


async def patch(
    client: httpx.AsyncClient, who: NewAccountCredentials | None, message_uuid: str, update: Any
) -> httpx.Response:
    headers = basic(who) if who else {}
    return await client.patch(f"/v1/messages/{message_uuid}", json=update, headers=headers)


async def inbound_whatsapp(client: httpx.AsyncClient, runtime: Runtime, who: NewAccountCredentials) -> str:
    await link(runtime, who.api_key, Channel.WHATSAPP, BUSINESS)
    response = await simulate(
        client, who, {"channel": "whatsapp", "from": USER, "to": BUSINESS, "text": "hi"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["message_uuid"])


@pytest.fixture
def updates_seen(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[MessageUpdate]:
    """What the simulator connector is told, in order."""
    simulator = runtime.connectors.of_type("simulator")
    assert simulator is not None
    seen: list[MessageUpdate] = []
    real = simulator.update

    async def update(message: MessageRecord, change: MessageUpdate) -> None:
        seen.append(change)
        await real(message, change)

    monkeypatch.setattr(simulator, "update", update)
    return seen


# --- read ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "indicator"),
    [
        ({"status": "read"}, False),
        ({"status": "read", "replying_indicator": {"show": True, "type": "text"}}, True),
        ({"status": "read", "replying_indicator": {"show": True}}, True),
        ({"status": "read", "replying_indicator": {"show": False}}, False),
    ],
    ids=["plain", "indicator", "indicator-default-type", "indicator-hidden"],
)
async def test_an_inbound_whatsapp_message_is_marked_read(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    updates_seen: list[MessageUpdate],
    request_body: dict[str, Any],
    indicator: bool,
) -> None:
    message_uuid = await inbound_whatsapp(client, runtime, account)
    assert (await view(client, account, message_uuid))["status"] == "delivered"

    response = await patch(client, account, message_uuid, request_body)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert updates_seen == [MessageUpdate(UpdateStatus.READ, show_replying_indicator=indicator)]
    shown = await view(client, account, message_uuid)
    assert shown["status"] == "read"
    assert [entry["status"] for entry in shown["history"]] == ["delivered", "read"]

    # Again: already read, so the platform is not told twice and nothing more is recorded.
    assert (await patch(client, account, message_uuid, {"status": "read"})).status_code == 200
    assert len(updates_seen) == 1
    assert len((await view(client, account, message_uuid))["history"]) == 2


# --- revoke --------------------------------------------------------------------------------------


async def test_an_undelivered_rcs_message_is_revoked_and_later_receipts_change_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    updates_seen: list[MessageUpdate],
) -> None:
    request = body("rcs", "text", text="offer ends soon", to=SILENT, webhook_url=f"{receiver.url}/status")
    message_uuid = await send(client, account, request)
    (submitted,) = await webhooks_of(receiver, message_uuid, 1)
    assert submitted.json()["status"] == "submitted"

    response = await patch(client, account, message_uuid, {"status": "revoked"})
    assert response.status_code == 200, response.text
    assert updates_seen == [MessageUpdate(UpdateStatus.REVOKED)]
    shown = await view(client, account, message_uuid)
    assert shown["status"] == "revoked"
    assert [entry["status"] for entry in shown["history"]] == ["submitted", "revoked"]

    # The handset answers after all: its receipts, applied (committed) before report() returns,
    # move nothing on and queue no webhook.
    async with runtime.database.read() as conn:
        (ref,) = (
            await conn.execute(
                select(message_parts.c.provider_ref).where(message_parts.c.message_uuid == message_uuid)
            )
        ).scalars()
    simulator = runtime.connectors.of_type("simulator")
    assert simulator is not None
    for status in (Status.DELIVERED, Status.READ):
        await runtime.ingress.report(Receipt(simulator.name, ref, status, datetime.now(UTC)))
    after = await view(client, account, message_uuid)
    assert after["status"] == "revoked"
    assert after["history"] == shown["history"]
    # The revocation itself sent no webhook either: none is queued (a webhook job stays until
    # its attempt is over), and the submitted one is all that arrived.
    assert await webhook_jobs(runtime, message_uuid) == []
    arrived = [r for r in receiver.received if r.json().get("message_uuid") == message_uuid]
    assert arrived == [submitted]

    # Revoking again is no change, and the platform is not asked twice.
    assert (await patch(client, account, message_uuid, {"status": "revoked"})).status_code == 200
    assert len(updates_seen) == 1


async def test_a_delivery_that_overtakes_the_revocation_wins(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handset's receipt arrives while the platform is being asked to revoke (a network round
    trip): the message was delivered, so it is not revoked after all, and the client is told."""
    message_uuid = await send(client, account, body("rcs", "text", text="race", to=SILENT))
    await until_status(client, account, message_uuid, "submitted")
    simulator = runtime.connectors.of_type("simulator")
    assert simulator is not None
    async with runtime.database.read() as conn:
        query = select(message_parts.c.provider_ref).where(message_parts.c.message_uuid == message_uuid)
        ref = (await conn.execute(query)).scalar_one()

    async def delivered_meanwhile(message: MessageRecord, change: MessageUpdate) -> None:
        await runtime.ingress.report(Receipt(simulator.name, ref, Status.DELIVERED, datetime.now(UTC)))

    monkeypatch.setattr(simulator, "update", delivered_meanwhile)
    response = await patch(client, account, message_uuid, {"status": "revoked"})
    assert invalid_names(response) == ["status"]
    assert "delivered" in response.json()["invalid_parameters"][0]["reason"]
    shown = await view(client, account, message_uuid)
    assert shown["status"] == "delivered"
    assert [entry["status"] for entry in shown["history"]] == ["submitted", "delivered"]


async def test_a_message_revoked_before_handover_is_never_sent_and_costs_nothing(
    settings: Settings, receiver: WebhookReceiver
) -> None:
    """Revoked while still `accepted`: no provider has it, so none is asked; the price goes back;
    and the delivery job, when a worker runs it, sends nothing."""
    api = Runtime(settings, role=Role.API)
    await api.start()
    try:
        who = await create_account(api.database, api.box, name="api only")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(api)), base_url="http://t"
        ) as client:
            balance = (await client.get("/account/get-balance", headers=basic(who))).json()["value"]
            request = body("rcs", "text", text="oops", webhook_url=f"{receiver.url}/status")
            message_uuid = await send(client, who, request)
            assert (await client.get("/account/get-balance", headers=basic(who))).json()["value"] < balance
            assert (await patch(client, who, message_uuid, {"status": "revoked"})).status_code == 200
            shown = await view(client, who, message_uuid)
            assert (shown["status"], shown["usage"]["price"]) == ("revoked", "0")
            assert [entry["status"] for entry in shown["history"]] == ["revoked"]
            assert (await client.get("/account/get-balance", headers=basic(who))).json()["value"] == balance
    finally:
        await api.stop()

    worker = Runtime(settings, role=Role.WORKER)
    await worker.start()
    try:

        async def delivery_done() -> bool:  # a done job is deleted
            async with worker.database.read() as conn:
                query = select(jobs.c.state).where(jobs.c.kind == "deliver_message")
                return (await conn.execute(query)).first() is None

        await until(delivery_done, what="the delivery job run")
        async with worker.database.read() as conn:
            parts = (await conn.execute(select(message_parts))).all()
            status = (await conn.execute(select(messages.c.status))).scalar_one()
        assert (parts, status) == ([], "revoked")
        assert await webhook_jobs(worker, message_uuid) == []
    finally:
        await worker.stop()


async def test_a_message_cannot_be_revoked_after_24_hours(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    message_uuid = await send(client, account, body("rcs", "text", text="old news", to=SILENT))
    await until_status(client, account, message_uuid, "submitted")
    async with runtime.database.begin() as conn:
        day_ago = datetime.now(UTC) - timedelta(hours=24, minutes=1)
        await conn.execute(update(messages).where(messages.c.uuid == message_uuid).values(created_at=day_ago))
    response = await patch(client, account, message_uuid, {"status": "revoked"})
    assert invalid_names(response) == ["status"]
    assert "24 hours" in response.json()["invalid_parameters"][0]["reason"]
    assert (await view(client, account, message_uuid))["status"] == "submitted"


async def test_a_delivered_rcs_message_cannot_be_revoked(
    client: httpx.AsyncClient, account: NewAccountCredentials, updates_seen: list[MessageUpdate]
) -> None:
    message_uuid = await send(client, account, body("rcs", "text", text="hi", to=NEVER_READ))
    await until_status(client, account, message_uuid, "delivered")
    response = await patch(client, account, message_uuid, {"status": "revoked"})
    assert invalid_names(response) == ["status"]
    assert "delivered" in response.json()["invalid_parameters"][0]["reason"]
    assert updates_seen == []
    assert (await view(client, account, message_uuid))["status"] == "delivered"


# --- refused -------------------------------------------------------------------------------------


async def test_an_unknown_message_and_another_accounts_are_the_same_404(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    theirs = await inbound_whatsapp(client, runtime, account)
    intruder = await create_account(runtime.database, runtime.box, name="intruder")
    unknown = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

    foreign = await patch(client, intruder, theirs, {"status": "read"})
    missing = await patch(client, intruder, unknown, {"status": "read"})
    foreign_problem = assert_problem(foreign, 404, *NOT_FOUND)
    missing_problem = assert_problem(missing, 404, *NOT_FOUND)
    assert set(foreign_problem) == set(missing_problem) == {"type", "title", "detail", "instance"}
    assert foreign_problem["detail"].replace(theirs, unknown) == missing_problem["detail"]
    assert (await view(client, account, theirs))["status"] == "delivered"


async def test_a_status_the_channel_or_direction_does_not_allow_is_422(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    updates_seen: list[MessageUpdate],
) -> None:
    inbound = await inbound_whatsapp(client, runtime, account)
    sms = await send(client, account, body("sms", "text", text="hi", to=SILENT))
    whatsapp = await send(client, account, body("whatsapp", "text", text="hi", to=SILENT))
    await link(runtime, account.api_key, Channel.RCS, "tidings-agent")
    rcs_in = await simulate(
        client, account, {"channel": "rcs", "from": USER, "to": "tidings-agent", "text": "x"}
    )
    assert rcs_in.status_code == 202, rcs_in.text
    for outbound in (sms, whatsapp):  # settled: submitted, and nothing more
        await until_status(client, account, outbound, "submitted")

    for message_uuid, status, why in [
        (sms, "read", "cannot be set on a sms message"),
        (whatsapp, "revoked", "cannot be set on a whatsapp message"),
        (inbound, "revoked", "cannot be set on a whatsapp message"),
        (whatsapp, "read", "inbound whatsapp messages only"),
        (rcs_in.json()["message_uuid"], "revoked", "outbound rcs messages only"),
    ]:
        before = (await view(client, account, message_uuid))["status"]
        response = await patch(client, account, message_uuid, {"status": status})
        assert invalid_names(response) == ["status"], (message_uuid, status)
        assert why in response.json()["invalid_parameters"][0]["reason"]
        assert (await view(client, account, message_uuid))["status"] == before
    assert updates_seen == []


@pytest.mark.parametrize(
    ("update", "names"),
    [
        ({}, ["status"]),
        ({"status": "deleted"}, ["status"]),
        ({"status": "READ"}, ["status"]),
        ({"status": "delivered"}, ["status"]),
        ({"status": None}, ["status"]),
        ({"status": "read", "replying_indicator": {"show": "yes"}}, ["replying_indicator.show"]),
        ({"status": "read", "replying_indicator": {"type": "text"}}, ["replying_indicator.show"]),
        (
            {"status": "read", "replying_indicator": {"show": True, "type": "audio"}},
            ["replying_indicator.type"],
        ),
        ({"status": "read", "replying_indicator": True}, ["replying_indicator"]),
        ([{"status": "read"}], ["body"]),
        ("read", ["body"]),
    ],
    ids=str,
)
async def test_a_bad_body_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    updates_seen: list[MessageUpdate],
    update: Any,
    names: list[str],
) -> None:
    message_uuid = await inbound_whatsapp(client, runtime, account)
    assert invalid_names(await patch(client, account, message_uuid, update)) == names
    assert updates_seen == []
    assert (await view(client, account, message_uuid))["status"] == "delivered"


async def test_malformed_json_and_an_overlong_uuid_are_422(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    message_uuid = await inbound_whatsapp(client, runtime, account)
    malformed = await client.patch(
        f"/v1/messages/{message_uuid}",
        content=b'{"status": "read"',
        headers={**basic(account), "Content-Type": "application/json"},
    )
    assert malformed.status_code == 422 and malformed.json()["type"].endswith("#invalid-json")
    overlong = await patch(client, account, "u" * 101, {"status": "read"})
    assert overlong.status_code == 422
    assert (await view(client, account, message_uuid))["status"] == "delivered"


@pytest.mark.parametrize("authorization", [None, "Basic bm9ib2R5Om5vdGhpbmc=", "Bearer x.y.z"])
async def test_without_credentials_it_is_401_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, authorization: str | None
) -> None:
    message_uuid = await inbound_whatsapp(client, runtime, account)
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.patch(f"/v1/messages/{message_uuid}", json={"status": "read"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"
    assert (await view(client, account, message_uuid))["status"] == "delivered"
