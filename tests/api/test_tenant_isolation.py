"""Tenant isolation as a table: account A against account B's resources, on both databases.

Each case is one request A makes naming one of B's ids (an application, a number, an API key, a
secret). It is made twice: with B's id, and with an id that does not exist. Both answers must be
the same (status, content type, challenge, body; `instance` and `unroutable_id` are random per
request, and the id itself is echoed in some details, so each is masked), and nothing of A's or
B's may have changed. The tests after the table cover what is not a lookup by id: whose account a
send is stored under, and where B's webhooks go.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from tests.receiver import WebhookReceiver
from tests.signing_keys import signing_key
from tidings.channels.simulator.number_pool import find_in_pool, pool
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import messages

SUCCESS = {"error-code": "200", "error-code-label": "success"}
RANDOM_FIELDS = frozenset({"instance", "unroutable_id"})  # fresh per request, whatever it names
SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "text": "hello"}


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    return basic_header(credentials.api_key, credentials.api_secret)


def basic_header(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(application_id: str, private_key: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"application_id": application_id, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode(claims, signing_key(private_key), algorithm="RS256")
    return {"Authorization": f"Bearer {token}"}


def messages_capability(url: str) -> dict[str, Any]:
    return {
        "messages": {
            "webhooks": {
                "inbound_url": {"address": f"{url}/inbound", "http_method": "POST"},
                "status_url": {"address": f"{url}/status", "http_method": "POST"},
            },
            "version": "v1",
        }
    }


@dataclass(frozen=True)
class World:
    """Two tenants, each with an application (and its private key), a number and webhooks."""

    a: NewAccountCredentials
    b: NewAccountCredentials
    a_app_id: str
    a_private_key: str
    a_msisdn: str
    b_app_id: str
    b_private_key: str
    b_msisdn: str
    b_secret_ids: tuple[str, str]
    b_message_uuid: str
    receiver_a: WebhookReceiver
    receiver_b: WebhookReceiver

    @property
    def b_secret_id(self) -> str:
        return self.b_secret_ids[1]


# --- set-up -----------------------------------------------------------------------------------


@pytest.fixture
def receiver_b() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


async def create_application(
    client: httpx.AsyncClient, who: NewAccountCredentials, url: str
) -> tuple[str, str]:
    response = await client.post(
        "/v2/applications",
        json={"name": "tenant app", "capabilities": messages_capability(url)},
        headers=basic(who),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return str(body["id"]), str(body["keys"]["private_key"])


async def rent_number(client: httpx.AsyncClient, who: NewAccountCredentials, app_id: str) -> str:
    """The first number the pool still offers, bought and linked to `app_id`, all as `who`."""
    search = await client.get("/number/search", params={"country": "GB", "size": "1"}, headers=basic(who))
    assert search.status_code == 200, search.text
    msisdn = str(search.json()["numbers"][0]["msisdn"])
    for path, extra in (("/number/buy", {}), ("/number/update", {"app_id": app_id})):
        response = await client.post(
            path, data={"country": "GB", "msisdn": msisdn, **extra}, headers=basic(who)
        )
        assert (response.status_code, response.json()) == (200, SUCCESS), (path, response.text)
    return msisdn


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], extra: dict[str, Any] | None = None
) -> str:
    response = await client.post(
        "/v1/messages", json={**SMS, "from": "Tenant", **(extra or {})}, headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["message_uuid"])


@pytest.fixture
async def world(
    client: httpx.AsyncClient, runtime: Runtime, receiver: WebhookReceiver, receiver_b: WebhookReceiver
) -> World:
    a = await create_account(runtime.database, runtime.box, name="a", status_url=f"{receiver.url}/a-account")
    b = await create_account(
        runtime.database, runtime.box, name="b", status_url=f"{receiver_b.url}/b-account"
    )
    (a_app_id, a_key), (b_app_id, b_key) = await asyncio.gather(
        create_application(client, a, receiver.url), create_application(client, b, receiver_b.url)
    )
    a_msisdn = await rent_number(client, a, a_app_id)
    b_msisdn = await rent_number(client, b, b_app_id)

    for who, url in ((a, receiver.url), (b, receiver_b.url)):
        fields = {"moCallBackUrl": f"{url}/mo", "drCallBackUrl": f"{url}/dr"}
        response = await client.post("/account/settings", data=fields, headers=basic(who))
        assert response.status_code == 200, response.text

    secrets_path = f"/accounts/{b.api_key}/secrets"
    created = await client.post(secrets_path, json={"secret": "Second-s3cret"}, headers=basic(b))
    assert created.status_code == 201, created.text
    listed = (await client.get(secrets_path, headers=basic(b))).json()["_embedded"]["secrets"]
    first = next(s["id"] for s in listed if s["id"] != created.json()["id"])

    # B's message, sent and finished (submitted, delivered) before anything is compared.
    b_message = await send(client, basic(b))
    statuses = await asyncio.to_thread(receiver_b.wait_for, 2)
    assert [w.json()["status"] for w in statuses] == ["submitted", "delivered"]
    return World(
        a=a,
        b=b,
        a_app_id=a_app_id,
        a_private_key=a_key,
        a_msisdn=a_msisdn,
        b_app_id=b_app_id,
        b_private_key=b_key,
        b_msisdn=b_msisdn,
        b_secret_ids=(str(first), str(created.json()["id"])),
        b_message_uuid=b_message,
        receiver_a=receiver,
        receiver_b=receiver_b,
    )


# --- what "unchanged" and "the same answer" mean ------------------------------------------------


async def snapshot(client: httpx.AsyncClient, runtime: Runtime, w: World) -> dict[str, Any]:
    """Everything of both tenants, each read as its owner, plus every stored message."""
    seen: dict[str, Any] = {}
    for name, who in (("a", w.a), ("b", w.b)):
        own_app = w.a_app_id if who is w.a else w.b_app_id
        reads = {
            "application": ("GET", f"/v2/applications/{own_app}"),
            "applications": ("GET", "/v2/applications"),
            "numbers": ("GET", "/account/numbers"),
            "secrets": ("GET", f"/accounts/{who.api_key}/secrets"),
            "balance": ("GET", "/account/get-balance"),
            "settings": ("POST", "/account/settings"),  # no fields: changes nothing, answers them all
        }
        for what, (method, path) in reads.items():
            response = await client.request(method, path, headers=basic(who))
            seen[f"{name} {what}"] = (response.status_code, response.json())
    async with runtime.database.engine.connect() as conn:
        rows = await conn.execute(
            select(
                messages.c.uuid,
                messages.c.account_id,
                messages.c.application_id,
                messages.c.direction,
                messages.c.status,
                messages.c.to_address,
                messages.c.webhook_url,
            ).order_by(messages.c.uuid)
        )
        seen["messages"] = [tuple(row) for row in rows]
    seen["webhooks"] = (len(w.receiver_a.received), len(w.receiver_b.received))
    return seen


def masked(value: Any, ident: str) -> Any:
    if isinstance(value, dict):
        return {k: "<random>" if k in RANDOM_FIELDS else masked(v, ident) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item, ident) for item in value]
    if isinstance(value, str):
        return value.replace(ident, "<id>")
    return value


def answer(response: httpx.Response, ident: str) -> tuple[Any, ...]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    headers = response.headers
    return (
        response.status_code,
        headers.get("content-type"),
        headers.get("www-authenticate"),
        masked(body, ident),
    )


# --- the table ------------------------------------------------------------------------------------

Build = Callable[[World, str], dict[str, Any]]  # (world, id) -> httpx request arguments


def as_a(**extra: Any) -> Build:
    """A's Basic credentials; `{id}` (and `{a_msisdn}`, `{a_app}`) in string values are filled in."""

    def build(w: World, ident: str) -> dict[str, Any]:
        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.format(id=ident, a_msisdn=w.a_msisdn, a_app=w.a_app_id, url=w.receiver_a.url)
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return value

        return {"headers": basic(w.a), **{k: fill(v) for k, v in extra.items()}}

    return build


def key_params(w: World, ident: str) -> dict[str, Any]:
    """No Basic header: `ident` as the api_key parameter, with A's own secret."""
    return {"params": {"api_key": ident, "api_secret": w.a.api_secret}}


def key_form(w: World, ident: str) -> dict[str, Any]:
    return {
        "data": {"api_key": ident, "api_secret": w.a.api_secret, "moCallBackUrl": f"{w.receiver_a.url}/x"}
    }


def jwt_signed_by_a(w: World, ident: str) -> dict[str, Any]:
    return {"json": {**SMS, "from": "Tenant"}, "headers": bearer(ident, w.a_private_key)}


def basic_as_application(w: World, ident: str) -> dict[str, Any]:
    return {"json": {**SMS, "from": "Tenant"}, "headers": basic_header(ident, w.a.api_secret)}


def unknown_msisdn() -> str:
    """A GB mobile number the simulator's pool does not have: nobody has it or can buy it."""
    while True:
        msisdn = "4479" + "".join(random.choices("0123456789", k=8))
        if find_in_pool("GB", msisdn) is None:
            return msisdn


FOREIGN: dict[str, Callable[[World], str]] = {
    "application": lambda w: w.b_app_id,
    "number": lambda w: w.b_msisdn,
    "api_key": lambda w: w.b.api_key,
    "secret": lambda w: w.b_secret_id,
}
UNKNOWN: dict[str, Callable[[], str]] = {
    "application": lambda: str(uuid.uuid4()),
    "number": unknown_msisdn,
    "api_key": lambda: secrets.token_hex(4),  # how create_account draws keys
    "secret": lambda: str(uuid.uuid4()),
}


@dataclass(frozen=True)
class Case:
    label: str
    method: str
    path: str  # `{id}` is the id under test, `{a}` A's API key, `{b}` B's
    kind: str  # which of B's ids: a key of FOREIGN
    build: Build
    status: int  # the answer both requests must get

    def url(self, w: World, ident: str) -> str:
        return self.path.format(id=ident, a=w.a.api_key, b=w.b.api_key, b_secret=w.b_secret_id)


PUT_BODY = {"name": "taken over", "capabilities": messages_capability("{url}")}
GB = {"country": "GB"}
FREE_MSISDN = pool("GB")[-1].msisdn  # never rented here: A and B take the pool's first numbers

CASES = [
    # Application API v2
    Case("application get", "GET", "/v2/applications/{id}", "application", as_a(), 404),
    Case("application put", "PUT", "/v2/applications/{id}", "application", as_a(json=PUT_BODY), 404),
    Case("application delete", "DELETE", "/v2/applications/{id}", "application", as_a(), 404),
    # Numbers API: B's number
    Case(
        "numbers list by pattern", "GET", "/account/numbers", "number", as_a(params={"pattern": "{id}"}), 200
    ),
    Case("number search", "GET", "/number/search", "number", as_a(params={**GB, "pattern": "{id}"}), 200),
    Case("number buy", "POST", "/number/buy", "number", as_a(data={**GB, "msisdn": "{id}"}), 420),
    Case("number cancel", "POST", "/number/cancel", "number", as_a(data={**GB, "msisdn": "{id}"}), 420),
    Case(
        "number update",
        "POST",
        "/number/update",
        "number",
        as_a(data={**GB, "msisdn": "{id}", "app_id": "{a_app}", "moHttpUrl": "{url}/mo"}),
        420,
    ),
    # Numbers API: B's application or API key named on A's own number
    Case(
        "numbers list by application",
        "GET",
        "/account/numbers",
        "application",
        as_a(params={"application_id": "{id}"}),
        200,
    ),
    Case(
        "number update app_id",
        "POST",
        "/number/update",
        "application",
        as_a(data={**GB, "msisdn": "{a_msisdn}", "app_id": "{id}"}),
        420,
    ),
    Case(
        "number update messagesCallbackValue",
        "POST",
        "/number/update",
        "application",
        as_a(
            data={
                **GB,
                "msisdn": "{a_msisdn}",
                "messagesCallbackType": "app",
                "messagesCallbackValue": "{id}",
            }
        ),
        420,
    ),
    Case(
        "number update voiceCallbackValue",
        "POST",
        "/number/update",
        "application",
        as_a(data={**GB, "msisdn": "{a_msisdn}", "voiceCallbackType": "app", "voiceCallbackValue": "{id}"}),
        420,
    ),
    Case(
        "number buy for target_api_key",
        "POST",
        "/number/buy",
        "api_key",
        as_a(data={**GB, "msisdn": FREE_MSISDN, "target_api_key": "{id}"}),
        420,
    ),
    Case(
        "number cancel for target_api_key",
        "POST",
        "/number/cancel",
        "api_key",
        as_a(data={**GB, "msisdn": "{a_msisdn}", "target_api_key": "{id}"}),
        420,
    ),
    Case("numbers with B's api_key", "GET", "/account/numbers", "api_key", key_params, 401),
    # Account API: secrets
    Case("secrets list", "GET", "/accounts/{id}/secrets", "api_key", as_a(), 404),
    Case(
        "secret create",
        "POST",
        "/accounts/{id}/secrets",
        "api_key",
        as_a(json={"secret": "Takeover-s3cret"}),
        404,
    ),
    Case("secret get", "GET", "/accounts/{id}/secrets/{b_secret}", "api_key", as_a(), 404),
    Case("secret delete", "DELETE", "/accounts/{id}/secrets/{b_secret}", "api_key", as_a(), 404),
    Case("own key, B's secret get", "GET", "/accounts/{a}/secrets/{id}", "secret", as_a(), 404),
    Case("own key, B's secret delete", "DELETE", "/accounts/{a}/secrets/{id}", "secret", as_a(), 404),
    # Account API: balance and settings are the caller's own, whatever api_key is named
    Case("balance with B's api_key", "GET", "/account/get-balance", "api_key", key_params, 401),
    Case("settings with B's api_key", "POST", "/account/settings", "api_key", key_form, 401),
    Case(
        "balance, api_key param",
        "GET",
        "/account/get-balance",
        "api_key",
        as_a(params={"api_key": "{id}"}),
        200,
    ),
    Case(
        "settings, api_key param",
        "POST",
        "/account/settings",
        "api_key",
        as_a(params={"api_key": "{id}"}),
        200,
    ),
    # Simulator
    Case(
        "simulated inbound",
        "POST",
        "/sim/inbound",
        "number",
        as_a(json={"channel": "sms", "from": "447700900123", "to": "{id}", "text": "forged"}),
        404,
    ),
    # Messages API v1
    Case("send, JWT for B's app signed by A", "POST", "/v1/messages", "application", jwt_signed_by_a, 401),
    Case("send, Basic as B's app id", "POST", "/v1/messages", "application", basic_as_application, 401),
]


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
async def test_a_foreign_id_is_answered_as_an_unknown_one_and_left_unchanged(
    client: httpx.AsyncClient, runtime: Runtime, world: World, case: Case
) -> None:
    before = await snapshot(client, runtime, world)
    answers = []
    for ident in (FOREIGN[case.kind](world), UNKNOWN[case.kind]()):
        response = await client.request(case.method, case.url(world, ident), **case.build(world, ident))
        assert response.status_code == case.status, (ident, response.text)
        answers.append(answer(response, ident))
    assert answers[0] == answers[1]
    assert await snapshot(client, runtime, world) == before


# --- beyond lookups by id --------------------------------------------------------------------------


async def stored_message(runtime: Runtime, message_uuid: str) -> tuple[str, str | None]:
    async with runtime.database.engine.connect() as conn:
        row = (
            await conn.execute(
                select(messages.c.account_id, messages.c.application_id).where(
                    messages.c.uuid == message_uuid
                )
            )
        ).one()
    return row.account_id, row.application_id


async def test_listings_show_only_the_callers_own(client: httpx.AsyncClient, world: World) -> None:
    apps = (await client.get("/v2/applications", headers=basic(world.a))).json()
    assert [app["id"] for app in apps["_embedded"]["applications"]] == [world.a_app_id]
    numbers = (await client.get("/account/numbers", headers=basic(world.a))).json()
    assert [number["msisdn"] for number in numbers["numbers"]] == [world.a_msisdn]
    listed = (await client.get(f"/accounts/{world.a.api_key}/secrets", headers=basic(world.a))).json()
    assert world.b_secret_ids[0] not in str(listed) and world.b_secret_ids[1] not in str(listed)
    settings = (await client.post("/account/settings", headers=basic(world.a))).json()
    assert settings["mo-callback-url"] == f"{world.receiver_a.url}/mo"


async def test_settings_naming_b_change_only_the_callers_own(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    b_before = {k: v for k, v in (await snapshot(client, runtime, world)).items() if k.startswith("b ")}
    response = await client.post(
        "/account/settings",
        params={"api_key": world.b.api_key},
        data={"api_key": world.b.api_key, "moCallBackUrl": "https://example.com/changed"},
        headers=basic(world.a),
    )
    assert response.status_code == 200, response.text
    assert response.json()["mo-callback-url"] == "https://example.com/changed"
    assert response.json()["dr-callback-url"] == f"{world.receiver_a.url}/dr"  # A's, not B's
    b_after = {k: v for k, v in (await snapshot(client, runtime, world)).items() if k.startswith("b ")}
    assert b_after == b_before


async def test_a_send_with_its_own_application_jwt_is_stored_under_a(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sent = await send(client, bearer(world.a_app_id, world.a_private_key))
    assert await stored_message(runtime, sent) == (world.a.api_key, world.a_app_id)


async def test_basic_credentials_cannot_borrow_another_accounts_application(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    # No field of the body chooses an application: with Basic auth the send is A's own, app-less.
    sent = await send(client, basic(world.a), {"application_id": world.b_app_id, "from": world.b_msisdn})
    assert await stored_message(runtime, sent) == (world.a.api_key, None)


async def test_b_webhooks_never_reach_a(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    b_messages = {world.b_message_uuid}
    b_messages.add(await send(client, bearer(world.b_app_id, world.b_private_key)))
    b_messages.add(await send(client, basic(world.b)))
    inbound = await client.post(
        "/sim/inbound",
        json={"channel": "sms", "from": "447700900123", "to": world.b_msisdn, "text": "for b"},
        headers=basic(world.b),
    )
    assert inbound.status_code == 202, inbound.text
    b_messages.add(inbound.json()["message_uuid"])
    received_b = await asyncio.to_thread(world.receiver_b.wait_for, 2 + 2 + 2 + 1)
    assert {webhook.json()["message_uuid"] for webhook in received_b} == b_messages
    assert {webhook.path for webhook in received_b} == {"/b-account", "/status", "/inbound"}

    # A's receiver works (A's own traffic arrives) and holds nothing of B's.
    a_message = await send(client, bearer(world.a_app_id, world.a_private_key))
    received_a = await asyncio.to_thread(world.receiver_a.wait_for, 2)
    await asyncio.sleep(0.5)  # anything of B's misrouted would have arrived with or before A's own
    assert {webhook.json()["message_uuid"] for webhook in world.receiver_a.received} == {a_message}
    assert len(received_a) == len(world.receiver_a.received) == 2
