"""/v2/applications through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from sqlalchemy import select

from tests.api.support import Refusing
from tests.signing_keys import signing_key
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import applications

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
PAYLOAD_INVALID = "https://developer.vonage.com/api-errors/application#payload-validation"
LIST_INVALID = "https://developer.vonage.com/api-errors/application#list-validation"

# Every capability the spec and the SDK name, plus one neither does (kept as sent).
FULL_CAPABILITIES: dict[str, Any] = {
    "voice": {
        "webhooks": {
            "answer_url": {
                "address": "https://example.com/answer",
                "http_method": "GET",
                "connection_timeout": 500,
                "socket_timeout": 3000,
            },
            "fallback_answer_url": {
                "address": "https://example.com/fallback",
                "http_method": "POST",
                "connect_timeout": 500,
                "socket_timeout": 5000,
            },
            "event_url": {
                "address": "https://example.com/event",
                "http_method": "POST",
                "socket_timeout": 10000,
            },
        },
        "signed_callbacks": True,
        "conversations_ttl": 8000,
        "leg_persistence_time": 14,
        "region": "na-east",
    },
    "rtc": {
        "webhooks": {"event_url": {"address": "https://example.com/rtc", "http_method": "GET"}},
        "signed_callbacks": True,
    },
    "messages": {
        "webhooks": {
            "inbound_url": {"address": "https://example.com/inbound", "http_method": "POST"},
            "status_url": {"address": "https://example.com/status", "http_method": "POST"},
        },
        "version": "v0.1",
        "authenticate_inbound_media": True,
    },
    "vbc": {},
    "verify": {"webhooks": {"status_url": {"address": "https://example.com/verify", "http_method": "POST"}}},
    "video": {"webhooks": {"archive_status": {"address": "https://example.com/video", "active": True}}},
}


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def rsa_key(bits: int = 2048) -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(key: RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def app_jwt(application_id: str, private_key: str | RSAPrivateKey) -> str:
    now = int(time.time())
    claims = {"application_id": application_id, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    key = signing_key(private_key) if isinstance(private_key, str) else private_key
    return jwt.encode(claims, key, algorithm="RS256")


async def create(
    client: httpx.AsyncClient, credentials: NewAccountCredentials, **body: Any
) -> dict[str, Any]:
    response = await client.post("/v2/applications", json={"name": "app", **body}, headers=basic(credentials))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send_sms_with_jwt(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/v1/messages",
        json={"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "hi"},
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_problem(response: httpx.Response, status: int, type_url: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "detail", "instance"} <= body.keys()
    if type_url:
        assert body["type"] == type_url
    return body


def invalid_names(response: httpx.Response, type_url: str = PAYLOAD_INVALID) -> set[str]:
    body = assert_problem(response, 400, type_url)
    assert body["title"] == "Bad Request"
    assert body["invalid_parameters"], body
    return {p["name"] for p in body["invalid_parameters"]}


@pytest.fixture
async def other_account(runtime: Runtime) -> NewAccountCredentials:
    return await create_account(runtime.database, runtime.box, name="other")


# --- create ---------------------------------------------------------------------------------


async def test_create_generates_a_key_pair_and_returns_the_private_key_once(
    client: httpx.AsyncClient, account: NewAccountCredentials, runtime: Runtime
) -> None:
    response = await client.post("/v2/applications", json={"name": "My Application"}, headers=basic(account))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert UUID4.fullmatch(body["id"])
    assert body["name"] == "My Application"
    assert body["capabilities"] == {}
    assert body["privacy"] == {"improve_ai": True}  # the spec's default
    assert body["_links"] == {"self": {"href": f"/v2/applications/{body['id']}"}}
    assert set(body["keys"]) == {"public_key", "private_key"}
    assert body["keys"]["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert body["keys"]["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    private = serialization.load_pem_private_key(body["keys"]["private_key"].encode(), password=None)
    public = serialization.load_pem_public_key(body["keys"]["public_key"].encode())
    assert isinstance(private, RSAPrivateKey) and isinstance(public, RSAPublicKey)
    assert private.key_size == 2048
    signature = private.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256())

    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(applications))).mappings().one()
    assert row["account_id"] == account.api_key
    assert row["public_key"] == body["keys"]["public_key"]
    assert "PRIVATE" not in repr(dict(row))


async def test_create_with_a_supplied_public_key_returns_it_and_no_private_key(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    key = rsa_key()
    body = await create(client, account, keys={"public_key": public_pem(key)})

    assert body["keys"] == {"public_key": public_pem(key)}
    assert (await send_sms_with_jwt(client, app_jwt(body["id"], key))).status_code == 202


async def test_a_pkcs1_rsa_public_key_is_accepted(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    pem = rsa_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert pem.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    body = await create(client, account, keys={"public_key": pem.decode()})
    assert body["keys"] == {"public_key": pem.decode()}


async def test_every_capability_is_stored_and_returned_as_sent(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account, capabilities=FULL_CAPABILITIES, privacy={"improve_ai": False})
    assert created["capabilities"] == FULL_CAPABILITIES
    assert created["privacy"] == {"improve_ai": False}

    fetched = (await client.get(f"/v2/applications/{created['id']}", headers=basic(account))).json()
    listed = (await client.get("/v2/applications", headers=basic(account))).json()["_embedded"][
        "applications"
    ]
    for body in (fetched, listed[0]):
        assert body["capabilities"] == FULL_CAPABILITIES
        assert body["privacy"] == {"improve_ai": False}
        assert body["keys"] == {"public_key": created["keys"]["public_key"]}


async def test_unknown_top_level_members_and_a_sent_back_private_key_are_ignored(
    client: httpx.AsyncClient, account: NewAccountCredentials, runtime: Runtime
) -> None:
    key = rsa_key()
    body = await create(
        client,
        account,
        id="not-mine",
        _links={"self": {"href": "/x"}},
        keys={"public_key": public_pem(key), "private_key": "-----BEGIN PRIVATE KEY-----\nx\n"},
    )
    assert body["id"] != "not-mine" and UUID4.fullmatch(body["id"])
    assert body["keys"] == {"public_key": public_pem(key)}
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(applications))).mappings().one()
    assert "PRIVATE" not in repr(dict(row))


async def test_the_trailing_slash_form_of_the_collection_works(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await client.post("/v2/applications/", json={"name": "slash"}, headers=basic(account))
    assert created.status_code == 201
    listed = await client.get("/v2/applications/", headers=basic(account))
    assert listed.status_code == 200 and listed.json()["total_items"] == 1


# --- validation -----------------------------------------------------------------------------


def _ec_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem() -> str:
    return (
        rsa_key()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


@pytest.mark.parametrize(
    "public_key",
    [
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "",
        pytest.param(_ec_public_pem(), id="ec-key"),
        pytest.param(public_pem(rsa_key(1024)), id="rsa-1024"),
        pytest.param(_private_pem(), id="private-key"),
    ],
)
async def test_an_unusable_public_key_is_refused(refusing: Refusing, public_key: str) -> None:
    response = await refusing.client.post(
        "/v2/applications",
        json={"name": "app", "keys": {"public_key": public_key}},
        headers=basic(refusing.account),
    )
    assert invalid_names(response) == {"keys.public_key"}


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 201}, {"name"}),
        ({"name": 42}, {"name"}),
        ({"name": "a\x00b"}, {"name"}),
        ({"name": "a", "keys": {"public_key": 7}}, {"keys.public_key"}),
        ({"name": "a", "keys": "x"}, {"keys"}),
        ({"name": "a", "capabilities": []}, {"capabilities"}),
        ({"name": "a", "privacy": {"improve_ai": "yes"}}, {"privacy.improve_ai"}),
        (
            {
                "name": "a",
                "capabilities": {"messages": {"webhooks": {"status_url": {"address": "https://e.x"}}}},
            },
            set(),  # valid: http_method is optional
        ),
        (
            {
                "name": "a",
                "capabilities": {
                    "messages": {"webhooks": {"status_url": {"address": "https://e.x", "http_method": "GET"}}}
                },
            },
            {"capabilities.messages.webhooks.status_url.http_method"},
        ),
        (
            {
                "name": "a",
                "capabilities": {"messages": {"webhooks": {"inbound_url": {"http_method": "POST"}}}},
            },
            {"capabilities.messages.webhooks.inbound_url.address"},
        ),
        (
            {
                "name": "a",
                "capabilities": {"messages": {"webhooks": {"inbound_url": {"address": "ftp://x"}}}},
            },
            {"capabilities.messages.webhooks.inbound_url.address"},
        ),
        ({"name": "a", "capabilities": {"messages": {"version": "v2"}}}, {"capabilities.messages.version"}),
        (
            {"name": "a", "capabilities": {"messages": {"authenticate_inbound_media": "true"}}},
            {"capabilities.messages.authenticate_inbound_media"},
        ),
        ({"name": "a", "capabilities": {"vbc": {"x": 1}}}, {"capabilities.vbc.x"}),
        (
            {
                "name": "a",
                "capabilities": {
                    "voice": {"webhooks": {"answer_url": {"address": "https://e.x", "http_method": "PUT"}}}
                },
            },
            {"capabilities.voice.webhooks.answer_url.http_method"},
        ),
        (
            {
                "name": "a",
                "capabilities": {
                    "voice": {"webhooks": {"answer_url": {"address": "https://e.x", "socket_timeout": 6000}}}
                },
            },
            {"capabilities.voice.webhooks.answer_url.socket_timeout"},
        ),
        ({"name": "a", "capabilities": {"voice": {"region": "mars"}}}, {"capabilities.voice.region"}),
        (
            {"name": "", "capabilities": {"rtc": {"webhooks": {"event_url": {"address": 1}}}}},
            {"name", "capabilities.rtc.webhooks.event_url.address"},
        ),
    ],
)
async def test_invalid_bodies_name_their_fields(
    client: httpx.AsyncClient, account: NewAccountCredentials, body: dict[str, Any], names: set[str]
) -> None:
    response = await client.post("/v2/applications", json=body, headers=basic(account))
    if not names:
        assert response.status_code == 201, response.text
        return
    assert invalid_names(response) == names


async def test_an_enum_reason_lists_the_choices(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    response = await client.post(
        "/v2/applications",
        json={"name": "a", "capabilities": {"messages": {"version": "v2"}}},
        headers=basic(account),
    )
    assert assert_problem(response, 400)["invalid_parameters"] == [
        {"name": "capabilities.messages.version", "reason": "must be one of: v1, v0.1."}
    ]


async def test_malformed_or_non_object_json_is_a_payload_error(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    headers = {**basic(account), "Content-Type": "application/json"}
    for raw in (b"{", b"[]", b'"name"'):
        response = await client.post("/v2/applications", content=raw, headers=headers)
        assert invalid_names(response) == {"body"}


async def test_absurdly_nested_bodies_are_refused(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    headers = {**basic(account), "Content-Type": "application/json"}
    for depth, name in ((40, "capabilities.video"), (100_000, "body")):
        raw = '{"name":"a","capabilities":{"video":' + "[" * depth + "]" * depth + "}}"
        response = await client.post("/v2/applications", content=raw.encode(), headers=headers)
        names = invalid_names(response)
        assert len(names) == 1 and next(iter(names)).startswith(name), names


async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    response = await client.post(
        "/v2/applications", content=b"name=x", headers={**basic(account), "Content-Type": "text/plain"}
    )
    assert_problem(response, 415)


# --- list -----------------------------------------------------------------------------------


def hrefs(body: dict[str, Any]) -> dict[str, str]:
    return {rel: link["href"] for rel, link in body["_links"].items()}


async def test_list_pages_through_the_account_s_applications(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    key = public_pem(rsa_key())
    ids = [(await create(client, account, name=f"app-{i}", keys={"public_key": key}))["id"] for i in range(5)]

    pages = []
    for page in (1, 2, 3):
        response = await client.get(f"/v2/applications?page_size=2&page={page}", headers=basic(account))
        assert response.status_code == 200, response.text
        pages.append(response.json())

    assert [[a["id"] for a in p["_embedded"]["applications"]] for p in pages] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    for number, body in enumerate(pages, start=1):
        assert (body["page"], body["page_size"], body["total_items"], body["total_pages"]) == (
            number,
            2,
            5,
            3,
        )
    assert hrefs(pages[0]) == {
        "self": "/v2/applications?page_size=2&page=1",
        "first": "/v2/applications?page_size=2",
        "last": "/v2/applications?page_size=2&page=3",
        "next": "/v2/applications?page_size=2&page=2",
    }
    assert hrefs(pages[1]) == {
        "self": "/v2/applications?page_size=2&page=2",
        "first": "/v2/applications?page_size=2",
        "last": "/v2/applications?page_size=2&page=3",
        "prev": "/v2/applications?page_size=2&page=1",
        "next": "/v2/applications?page_size=2&page=3",
    }
    assert hrefs(pages[2]) == {
        "self": "/v2/applications?page_size=2&page=3",
        "first": "/v2/applications?page_size=2",
        "last": "/v2/applications?page_size=2&page=3",
        "prev": "/v2/applications?page_size=2&page=2",
    }
    for body in pages:
        for app in body["_embedded"]["applications"]:
            assert app["keys"] == {"public_key": key}
            assert app["_links"] == {"self": {"href": f"/v2/applications/{app['id']}"}}


async def test_list_defaults_and_edges(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    empty = (await client.get("/v2/applications", headers=basic(account))).json()
    assert empty == {
        "page_size": 10,
        "page": 1,
        "total_items": 0,
        "total_pages": 1,
        "_embedded": {"applications": []},
        "_links": {
            "self": {"href": "/v2/applications?page_size=10&page=1"},
            "first": {"href": "/v2/applications?page_size=10"},
            "last": {"href": "/v2/applications?page_size=10&page=1"},
        },
    }
    for _ in range(3):
        await create(client, account)
    exact = (await client.get("/v2/applications?page_size=3", headers=basic(account))).json()
    assert (exact["total_pages"], len(exact["_embedded"]["applications"])) == (1, 3)
    assert "next" not in exact["_links"]
    beyond = (await client.get("/v2/applications?page_size=2&page=9", headers=basic(account))).json()
    assert beyond["_embedded"]["applications"] == []
    assert (beyond["page"], beyond["total_pages"]) == (9, 2)
    assert hrefs(beyond)["prev"] == "/v2/applications?page_size=2&page=2"
    assert "next" not in beyond["_links"]
    largest = await client.get("/v2/applications?page_size=100", headers=basic(account))
    assert largest.status_code == 200


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("page_size=0", {"page_size"}),
        ("page_size=101", {"page_size"}),
        ("page_size=abc", {"page_size"}),
        ("page=0", {"page"}),
        ("page=-1", {"page"}),
        ("page=1.5&page_size=", {"page", "page_size"}),
    ],
)
async def test_an_invalid_list_query_is_400(refusing: Refusing, query: str, names: set[str]) -> None:
    response = await refusing.client.get(f"/v2/applications?{query}", headers=basic(refusing.account))
    assert invalid_names(response, LIST_INVALID) == names


# --- get, update, delete --------------------------------------------------------------------


async def test_get_and_update_never_return_the_private_key(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account, capabilities={"messages": {"version": "v1"}})
    path = f"/v2/applications/{created['id']}"

    fetched = await client.get(path, headers=basic(account))
    assert fetched.status_code == 200
    expected = {**created, "keys": {"public_key": created["keys"]["public_key"]}}
    assert fetched.json() == expected

    new_capabilities = {
        "messages": {"webhooks": {"status_url": {"address": "https://e.x/s"}}, "version": "v0.1"}
    }
    updated = await client.put(
        path, json={"name": "renamed", "capabilities": new_capabilities}, headers=basic(account)
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == {
        **expected,
        "name": "renamed",
        "capabilities": new_capabilities,
        "privacy": {"improve_ai": True},
    }
    assert (await client.get(path, headers=basic(account))).json() == updated.json()
    for body in (
        fetched.text,
        updated.text,
        (await client.get("/v2/applications", headers=basic(account))).text,
    ):
        assert "private_key" not in body and "PRIVATE KEY" not in body


async def test_put_replaces_capabilities_and_keeps_the_key_when_none_is_given(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account, capabilities=FULL_CAPABILITIES, privacy={"improve_ai": False})
    updated = await client.put(
        f"/v2/applications/{created['id']}", json={"name": "bare"}, headers=basic(account)
    )
    assert updated.status_code == 200
    assert updated.json()["capabilities"] == {}
    assert updated.json()["privacy"] == {"improve_ai": True}
    assert updated.json()["keys"] == {"public_key": created["keys"]["public_key"]}
    assert (
        await send_sms_with_jwt(client, app_jwt(created["id"], created["keys"]["private_key"]))
    ).status_code == 202


async def test_a_new_public_key_takes_effect_at_once(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account)
    old_private = created["keys"]["private_key"]
    assert (await send_sms_with_jwt(client, app_jwt(created["id"], old_private))).status_code == 202  # cached

    new_key = rsa_key()
    updated = await client.put(
        f"/v2/applications/{created['id']}",
        json={"name": "app", "keys": {"public_key": public_pem(new_key)}},
        headers=basic(account),
    )
    assert updated.status_code == 200
    assert updated.json()["keys"] == {"public_key": public_pem(new_key)}

    assert_problem(await send_sms_with_jwt(client, app_jwt(created["id"], old_private)), 401)
    assert (await send_sms_with_jwt(client, app_jwt(created["id"], new_key))).status_code == 202


async def test_an_invalid_update_changes_nothing(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account)
    path = f"/v2/applications/{created['id']}"
    bad_key = await client.put(
        path, json={"name": "x", "keys": {"public_key": "nope"}}, headers=basic(account)
    )
    assert invalid_names(bad_key) == {"keys.public_key"}
    no_name = await client.put(path, json={"capabilities": {}}, headers=basic(account))
    assert invalid_names(no_name) == {"name"}
    assert (await client.get(path, headers=basic(account))).json()["name"] == "app"


async def test_delete_is_204_then_404_and_its_jwts_fail_at_once(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    created = await create(client, account)
    path = f"/v2/applications/{created['id']}"
    private_key = created["keys"]["private_key"]
    assert (await send_sms_with_jwt(client, app_jwt(created["id"], private_key))).status_code == 202  # cached

    deleted = await client.delete(path, headers=basic(account))
    assert deleted.status_code == 204
    assert deleted.content == b""

    assert_problem(await send_sms_with_jwt(client, app_jwt(created["id"], private_key)), 401)
    assert_problem(await client.get(path, headers=basic(account)), 404)
    assert_problem(await client.delete(path, headers=basic(account)), 404)
    assert_problem(await client.put(path, json={"name": "x"}, headers=basic(account)), 404)
    assert (await client.get("/v2/applications", headers=basic(account))).json()["total_items"] == 0


@pytest.mark.parametrize(
    "application_id", ["2efc5b9a-bcd3-424c-b687-64879ebc1ddb", "x" * 80, "a%00b", "not%20an%20id"]
)
async def test_unknown_ids_are_404(refusing: Refusing, application_id: str) -> None:
    path = f"/v2/applications/{application_id}"
    assert_problem(await refusing.client.get(path, headers=basic(refusing.account)), 404)
    assert_problem(await refusing.client.put(path, json={"name": "x"}, headers=basic(refusing.account)), 404)
    assert_problem(await refusing.client.delete(path, headers=basic(refusing.account)), 404)


# --- tenancy and authentication -------------------------------------------------------------


async def test_another_account_s_application_is_not_found_and_untouched(
    client: httpx.AsyncClient, account: NewAccountCredentials, other_account: NewAccountCredentials
) -> None:
    mine = await create(client, account, name="mine")
    path = f"/v2/applications/{mine['id']}"
    intruder = basic(other_account)

    for response in (
        await client.get(path, headers=intruder),
        await client.put(path, json={"name": "stolen"}, headers=intruder),
        await client.delete(path, headers=intruder),
    ):
        body = assert_problem(response, 404, "https://developer.vonage.com/api-errors#not-found")
        assert body["title"] == "Not Found"

    theirs = (await client.get("/v2/applications", headers=intruder)).json()
    assert theirs["total_items"] == 0 and theirs["_embedded"]["applications"] == []
    still = await client.get(path, headers=basic(account))
    assert still.status_code == 200 and still.json()["name"] == "mine"
    assert (
        await send_sms_with_jwt(client, app_jwt(mine["id"], mine["keys"]["private_key"]))
    ).status_code == 202


async def test_credentials_are_required(
    client: httpx.AsyncClient, account: NewAccountCredentials, other_account: NewAccountCredentials
) -> None:
    created = await create(client, account)
    path = f"/v2/applications/{created['id']}"
    wrong_secret = basic(NewAccountCredentials(account.api_key, "Wrong-secret-1", ""))
    wrong_key = basic(NewAccountCredentials("deadbeef", account.api_secret, ""))
    bearer = {"Authorization": f"Bearer {app_jwt(created['id'], created['keys']['private_key'])}"}
    for headers in ({}, wrong_secret, wrong_key, bearer, {"Authorization": "Basic !!!"}):
        for method, url, body in (
            ("GET", "/v2/applications", None),
            ("POST", "/v2/applications", {"name": "x"}),
            ("GET", path, None),
            ("PUT", path, {"name": "x"}),
            ("DELETE", path, None),
        ):
            response = await client.request(method, url, json=body, headers=headers)
            assert_problem(response, 401, "https://developer.vonage.com/api-errors#unauthorized")
    # Authentication is checked before the body: a bad body without credentials is still 401.
    assert_problem(await client.post("/v2/applications", json={}), 401)
    assert (await client.get(path, headers=basic(account))).json()["name"] == "app"


async def test_the_openapi_document_describes_the_endpoints(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/v2/applications"]) == {"get", "post"}
    assert set(paths["/v2/applications/{application_id}"]) == {"get", "put", "delete"}
    request_schema = paths["/v2/applications"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["required"] == ["name"]
    assert "$defs" not in str(request_schema)
    assert "201" in paths["/v2/applications"]["post"]["responses"]
    assert "204" in paths["/v2/applications/{application_id}"]["delete"]["responses"]
