"""POST /v1/messages through the ASGI app, on SQLite and PostgreSQL: what is accepted and stored,
what is refused (and then nothing is stored), and the operational endpoints beside it."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping
from vonage_messages import SendMessageResponse, Sms, SmsOptions

from tests.api.support import Refusing
from tidings.api import messages_v1
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import accounts, jobs, messages

ERRORS = "https://developer.vonage.com/api-errors"
INSTANCE = re.compile(r"^[0-9a-f]{32}$")

VALID: dict[str, Any] = {
    "channel": "sms",
    "message_type": "text",
    "to": "447700900000",
    "from": "Acme",
    "text": "Hello from Tidings",
}


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The API role only: no worker moves the message or its job on, so the test sees exactly what
    the send stored."""
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    return {"Authorization": basic_value(credentials.api_key, credentials.api_secret)}


def basic_value(api_key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()


def with_(**changes: Any) -> dict[str, Any]:
    body = dict(VALID)
    for name, value in changes.items():
        body["from" if name == "from_" else name] = value
    return body


def without(name: str) -> dict[str, Any]:
    return {key: value for key, value in VALID.items() if key != name}


async def stored(runtime: Runtime) -> tuple[list[RowMapping], list[RowMapping]]:
    async with runtime.database.engine.connect() as conn:
        message_rows = list((await conn.execute(select(messages))).mappings().all())
        job_rows = list((await conn.execute(select(jobs))).mappings().all())
    return message_rows, job_rows


async def stored_counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.database.engine.connect() as conn:
        message_count = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        job_count = (await conn.execute(select(func.count()).select_from(jobs))).scalar_one()
    return message_count, job_count


def assert_problem(response: httpx.Response, status: int, type_url: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == type_url
    assert body["title"] == title
    assert isinstance(body["detail"], str) and body["detail"]
    assert INSTANCE.match(body["instance"]), body["instance"]
    return dict(body)


def assert_accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["message_uuid"]
    parsed = uuid.UUID(body["message_uuid"])
    assert parsed.version == 7  # time-ordered: domain/ids.py
    assert str(parsed) == body["message_uuid"]
    return str(body["message_uuid"])


# --- accepted ------------------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(with_(from_="Acme"), id="alphanumeric-sender"),
    pytest.param(with_(from_="Acme Ltd.co"), id="alphanumeric-sender-11"),
    pytest.param(with_(from_="447700900001"), id="numeric-sender"),
    pytest.param(with_(from_="12345"), id="short-code"),
    pytest.param(with_(text="a" * 3200), id="text-3200"),
    pytest.param(with_(text="Привет, мир 👋 你好 — ✓"), id="unicode-text"),
    pytest.param(with_(sms={"encoding_type": "text"}), id="encoding-text"),
    pytest.param(with_(sms={"encoding_type": "unicode"}), id="encoding-unicode"),
    pytest.param(with_(sms={"encoding_type": "auto"}), id="encoding-auto"),
    pytest.param(
        with_(sms={"content_id": "1107161234567890", "entity_id": "1101456789012345", "pool_id": "pool-7"}),
        id="content-entity-pool-ids",
    ),
    pytest.param(with_(ttl=20), id="ttl-20"),
    pytest.param(with_(ttl=604800), id="ttl-604800"),
    pytest.param(with_(client_ref="r" * 100), id="client-ref-100"),
    pytest.param(with_(webhook_url="https://example.com/status", webhook_version="v1"), id="webhook-v1"),
    pytest.param(with_(webhook_url="http://127.0.0.1:9/status", webhook_version="v0.1"), id="webhook-v0.1"),
    pytest.param(with_(trusted_recipient=True), id="trusted-recipient-true"),
    pytest.param(with_(trusted_recipient=False), id="trusted-recipient-false"),
    pytest.param(with_(to="1234567"), id="to-7-digits"),
    pytest.param(with_(to="123456789012345"), id="to-15-digits"),
    pytest.param(
        with_(
            from_="447700900001",
            text="Everything at once ✓",
            ttl=3600,
            client_ref="order-42",
            webhook_url="https://example.com/hooks/status",
            webhook_version="v1",
            trusted_recipient=True,
            sms={"encoding_type": "unicode", "content_id": "c-1", "entity_id": "e-1", "pool_id": "p-1"},
        ),
        id="every-field",
    ),
]


@pytest.mark.parametrize("body", ACCEPTED)
async def test_valid_sms_is_accepted_and_stored_with_one_delivery_job(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, body: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    response = await client.post("/v1/messages", json=body, headers=basic(account))
    message_uuid = assert_accepted(response)

    message_rows, job_rows = await stored(runtime)
    assert len(message_rows) == 1
    row = message_rows[0]
    assert row["uuid"] == message_uuid
    assert row["account_id"] == account.api_key
    assert row["direction"] == "outbound"
    assert row["channel"] == "sms"
    assert row["message_type"] == "text"
    assert row["to_address"] == body["to"]
    assert row["from_address"] == body["from"]
    assert row["content"] == {"text": body["text"]}
    assert row["options"] == body.get("sms", {})
    assert row["client_ref"] == body.get("client_ref")
    assert row["webhook_url"] == body.get("webhook_url")
    assert row["webhook_version"] == body.get("webhook_version")
    assert row["ttl"] == body.get("ttl")
    assert row["trusted_recipient"] == body.get("trusted_recipient")
    assert row["status"] == "accepted"
    assert row["application_id"] is None
    assert before - timedelta(seconds=1) <= row["created_at"] <= datetime.now(UTC) + timedelta(seconds=1)

    assert len(job_rows) == 1
    job = job_rows[0]
    assert job["kind"] == "deliver_message"
    assert job["payload"] == {"message_uuid": message_uuid}
    assert job["state"] == "pending"
    assert job["attempts"] == 0


async def test_each_send_gets_its_own_uuid_row_and_job(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    uuids = [
        assert_accepted(
            await client.post("/v1/messages", json=with_(client_ref=f"r{i}"), headers=basic(account))
        )
        for i in range(5)
    ]
    assert len(set(uuids)) == 5
    message_rows, job_rows = await stored(runtime)
    assert sorted(row["uuid"] for row in message_rows) == sorted(uuids)
    assert sorted(job["payload"]["message_uuid"] for job in job_rows) == sorted(uuids)
    assert {row["uuid"]: row["client_ref"] for row in message_rows} == {
        u: f"r{i}" for i, u in enumerate(uuids)
    }


async def test_background_writes_hold_back_from_the_moment_a_send_arrives(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Authentication may wait on Redis (JWT replay cache); in that gap the worker must not take
    # the write lock from the send, or under load every send waits out a worker transaction.
    authenticating = asyncio.Event()
    release = asyncio.Event()
    real_principal = messages_v1.principal

    async def slow_principal(request: Any) -> Any:
        authenticating.set()
        await release.wait()
        return await real_principal(request)

    monkeypatch.setattr(messages_v1, "principal", slow_principal)
    send = asyncio.create_task(client.post("/v1/messages", json=VALID, headers=basic(account)))
    await asyncio.wait_for(authenticating.wait(), timeout=5)
    entered = asyncio.Event()

    async def background_write() -> None:
        async with runtime.database.writing():
            entered.set()

    background = asyncio.create_task(background_write())
    await asyncio.sleep(0.02)  # well within the longest a background write may be held (50 ms)
    assert not entered.is_set()
    release.set()
    assert (await send).status_code == 202
    await asyncio.wait_for(background, timeout=5)


async def test_what_the_official_sdk_sends_is_accepted_and_its_response_parses(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    sdk_message = Sms(
        to="447700900000",
        from_="Acme",
        text="hi from the SDK",
        ttl=900,
        client_ref="sdk-1",
        trusted_recipient=True,
        sms=SmsOptions(encoding_type="text"),
    )
    body = sdk_message.model_dump(mode="json", by_alias=True, exclude_none=True)
    response = await client.post(
        "/v1/messages",
        content=json.dumps(body).encode(),
        headers={**basic(account), "Content-Type": "application/json", "Accept": "application/json"},
    )
    message_uuid = assert_accepted(response)
    assert SendMessageResponse(**response.json()).message_uuid == message_uuid
    (row,), _ = await stored(runtime)
    assert row["content"] == {"text": "hi from the SDK"}
    assert (row["ttl"], row["client_ref"], row["options"]) == (900, "sdk-1", {"encoding_type": "text"})


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
)
async def test_json_content_type_variants_are_accepted(
    client: httpx.AsyncClient, account: NewAccountCredentials, content_type: str
) -> None:
    response = await client.post(
        "/v1/messages",
        content=json.dumps(VALID).encode(),
        headers={**basic(account), "Content-Type": content_type},
    )
    assert_accepted(response)


async def test_basic_scheme_is_case_insensitive(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    value = basic_value(account.api_key, account.api_secret).replace("Basic", "basic", 1)
    assert_accepted(await client.post("/v1/messages", json=VALID, headers={"Authorization": value}))


# --- refused: invalid parameters -----------------------------------------------------------------

INVALID = [
    pytest.param(with_(to="+447700900000"), ["to"], id="to-plus"),
    pytest.param(with_(to="00447700900000"), ["to"], id="to-00"),
    pytest.param(with_(to="123456"), ["to"], id="to-too-short"),
    pytest.param(with_(to="1234567890123456"), ["to"], id="to-too-long"),
    pytest.param(with_(to=447700900000), ["to"], id="to-not-a-string"),
    pytest.param(with_(to="447700900000\n"), ["to"], id="to-trailing-newline"),
    pytest.param(with_(from_="ABCDEFGHIJKL"), ["from"], id="from-too-long"),
    pytest.param(with_(from_="Acme<script>"), ["from"], id="from-illegal-characters"),
    pytest.param(with_(from_="Äcme"), ["from"], id="from-non-ascii"),
    pytest.param(with_(from_=12345), ["from"], id="from-not-a-string"),
    pytest.param(with_(text=""), ["text"], id="text-empty"),
    pytest.param(with_(text="a" * 3201), ["text"], id="text-too-long"),
    pytest.param(with_(ttl=19), ["ttl"], id="ttl-19"),
    pytest.param(with_(ttl=604801), ["ttl"], id="ttl-604801"),
    pytest.param(with_(ttl="3600"), ["ttl"], id="ttl-string"),
    pytest.param(with_(ttl=60.5), ["ttl"], id="ttl-float"),
    pytest.param(with_(client_ref="r" * 101), ["client_ref"], id="client-ref-101"),
    pytest.param(with_(client_ref="a\x00b"), ["client_ref"], id="client-ref-nul"),
    pytest.param(with_(webhook_url="ftp://example.com/status"), ["webhook_url"], id="webhook-url-ftp"),
    pytest.param(with_(webhook_url="javascript:alert(1)"), ["webhook_url"], id="webhook-url-javascript"),
    pytest.param(with_(webhook_url="example.com/status"), ["webhook_url"], id="webhook-url-relative"),
    pytest.param(with_(webhook_url="https://example.com/\x00"), ["webhook_url"], id="webhook-url-nul"),
    pytest.param(with_(webhook_version="v2"), ["webhook_version"], id="webhook-version-v2"),
    pytest.param(with_(webhook_version=1), ["webhook_version"], id="webhook-version-number"),
    pytest.param(with_(trusted_recipient="true"), ["trusted_recipient"], id="bool-as-string"),
    pytest.param(with_(trusted_recipient=1), ["trusted_recipient"], id="bool-as-number"),
    pytest.param(with_(sms={"encoding_type": "binary"}), ["sms.encoding_type"], id="encoding-type-unknown"),
    pytest.param(with_(sms={"content_id": ""}), ["sms.content_id"], id="content-id-empty"),
    pytest.param(with_(sms="unicode"), ["sms"], id="sms-not-an-object"),
    pytest.param(without("to"), ["to"], id="missing-to"),
    pytest.param(without("from"), ["from"], id="missing-from"),
    pytest.param(without("text"), ["text"], id="missing-text"),
    pytest.param(without("channel"), ["channel"], id="missing-channel"),
    pytest.param(without("message_type"), ["message_type"], id="missing-message-type"),
    pytest.param(
        with_(to="+1", from_="!", ttl=5, client_ref="r" * 101, sms={"encoding_type": "x"}),
        ["to", "from", "ttl", "client_ref", "sms.encoding_type"],
        id="several-at-once",
    ),
    pytest.param(
        {"channel": "sms", "message_type": "text"}, ["to", "from", "text"], id="only-channel-and-type"
    ),
]


@pytest.mark.parametrize(("body", "names"), INVALID)
async def test_invalid_request_is_422_naming_each_bad_field_and_stores_nothing(
    refusing: Refusing,
    body: dict[str, Any],
    names: list[str],
) -> None:
    response = await refusing.client.post("/v1/messages", json=body, headers=basic(refusing.account))
    problem = assert_problem(response, 422, f"{ERRORS}/messages#1150", "Invalid params")
    assert set(problem) == {"type", "title", "detail", "instance", "invalid_parameters"}
    assert problem["detail"] == "The value of one or more parameters is invalid."
    params = problem["invalid_parameters"]
    assert sorted(p["name"] for p in params) == sorted(names)
    assert all(set(p) == {"name", "reason"} and p["reason"] for p in params)
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize("channel", ["fax", "SMS", "carrier-pigeon", 7, ["sms"]])
async def test_unknown_channel_is_1100_and_stores_nothing(refusing: Refusing, channel: Any) -> None:
    response = await refusing.client.post(
        "/v1/messages", json=with_(channel=channel), headers=basic(refusing.account)
    )
    problem = assert_problem(response, 422, f"{ERRORS}/messages#1100", "Unsupported channel")
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize("message_type", ["image", "audio", "video", "template", "custom", "nonsense"])
async def test_sms_with_unsupported_message_type_is_1140_and_stores_nothing(
    refusing: Refusing, message_type: str
) -> None:
    body = with_(message_type=message_type, image={"url": "https://example.com/a.png"})
    response = await refusing.client.post("/v1/messages", json=body, headers=basic(refusing.account))
    problem = assert_problem(response, 422, f"{ERRORS}/messages#1140", "Invalid message type")
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert await stored_counts(refusing.runtime) == (0, 0)


async def test_every_problem_gets_its_own_instance(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    instances = {
        (await client.post("/v1/messages", json=with_(ttl=1), headers=basic(account))).json()["instance"]
        for _ in range(3)
    }
    assert len(instances) == 3


# --- refused: credentials ------------------------------------------------------------------------

UNAUTHORIZED = {
    "type": f"{ERRORS}#unauthorized",
    "title": "Unauthorized",
    "detail": "You did not provide correct credentials.",
}


def _bad_headers(credentials: NewAccountCredentials) -> dict[str, dict[str, str]]:
    key, secret = credentials.api_key, credentials.api_secret
    return {
        "no-header": {},
        "empty-header": {"Authorization": ""},
        "wrong-secret": {"Authorization": basic_value(key, secret + "x")},
        "secret-of-other-case": {"Authorization": basic_value(key, secret.swapcase())},
        "unknown-key": {"Authorization": basic_value("00000000", secret)},
        "key-only": {"Authorization": basic_value(key, "")},
        "malformed-base64": {"Authorization": "Basic !!!this-is-not-base64!!!"},
        "missing-colon": {"Authorization": "Basic " + base64.b64encode(f"{key}{secret}".encode()).decode()},
        "bearer-garbage": {"Authorization": "Bearer garbage"},
        "bearer-empty": {"Authorization": "Bearer "},
        "unknown-scheme": {"Authorization": "Digest username=" + key},
        "raw-credentials": {"Authorization": f"{key}:{secret}"},
    }


@pytest.mark.parametrize("case", list(_bad_headers(NewAccountCredentials("k", "s", "x"))))
async def test_bad_credentials_get_vonages_401_and_store_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, case: str
) -> None:
    response = await client.post("/v1/messages", json=VALID, headers=_bad_headers(account)[case])
    problem = assert_problem(response, 401, UNAUTHORIZED["type"], UNAUTHORIZED["title"])
    assert {k: problem[k] for k in UNAUTHORIZED} == UNAUTHORIZED
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert "basic" in response.headers["www-authenticate"].lower()
    assert await stored_counts(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (json.dumps(with_(to="+1", ttl=1)).encode(), "application/json"),
        (json.dumps(with_(channel="fax")).encode(), "application/json"),
        (b"[]", "application/json"),
        (b"to=447700900000", "application/x-www-form-urlencoded"),
        (b"hello", "text/plain"),
    ],
    ids=["invalid-json", "invalid-fields", "unknown-channel", "array", "form", "text-plain"],
)
async def test_credentials_are_checked_before_the_body(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    content: bytes,
    content_type: str,
) -> None:
    headers = {"Authorization": basic_value(account.api_key, "wrong"), "Content-Type": content_type}
    response = await client.post("/v1/messages", content=content, headers=headers)
    assert_problem(response, 401, UNAUTHORIZED["type"], UNAUTHORIZED["title"])
    assert await stored_counts(runtime) == (0, 0)


async def test_a_disabled_account_is_refused_once_its_cache_entry_is_dropped(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    assert_accepted(await client.post("/v1/messages", json=VALID, headers=basic(account)))
    async with runtime.database.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.api_key == account.api_key).values(status="disabled")
        )
    runtime.authenticator.invalidate(account.api_key)
    response = await client.post("/v1/messages", json=VALID, headers=basic(account))
    assert_problem(response, 401, UNAUTHORIZED["type"], UNAUTHORIZED["title"])
    assert await stored_counts(runtime) == (1, 1)


async def test_another_accounts_secret_does_not_authenticate(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    other = await create_account(runtime.database, runtime.box, name="other")
    response = await client.post(
        "/v1/messages", json=VALID, headers={"Authorization": basic_value(account.api_key, other.api_secret)}
    )
    assert_problem(response, 401, UNAUTHORIZED["type"], UNAUTHORIZED["title"])
    # and each account's messages are stored under its own key
    assert_accepted(await client.post("/v1/messages", json=VALID, headers=basic(other)))
    (row,), _ = await stored(runtime)
    assert row["account_id"] == other.api_key


# --- refused: the body as bytes ------------------------------------------------------------------


def _custom(number: bytes) -> bytes:
    return (
        b'{"channel": "whatsapp", "message_type": "custom", "to": "447700900000", "from": "447700900001",'
        b' "custom": {"type": "text", "value": ' + number + b"}}"
    )


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"{not json}",
        b"",
        b"{'channel': 'sms'}",
        b'{"channel": "sms",}',
        b"\xff\xfe\xfa",
        b"NaNx",
        # What Python's parser reads and JSON is not: a WhatsApp custom object holding one was
        # accepted and stored before.
        _custom(b"NaN"),
        _custom(b"Infinity"),
        _custom(b"-Infinity"),
        _custom(b"1e999"),
    ],
    ids=[
        "unclosed",
        "bare-words",
        "empty",
        "single-quotes",
        "trailing-comma",
        "not-utf8",
        "garbage",
        "nan",
        "infinity",
        "minus-infinity",
        "past-a-double",
    ],
)
async def test_malformed_json_is_422_invalid_json(refusing: Refusing, content: bytes) -> None:
    response = await refusing.client.post(
        "/v1/messages",
        content=content,
        headers={**basic(refusing.account), "Content-Type": "application/json"},
    )
    problem = assert_problem(
        response, 422, f"{ERRORS}#invalid-json", "The request body did not contain valid JSON"
    )
    assert set(problem) == {"type", "title", "detail", "instance"}
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
async def test_wrong_content_type_is_415(refusing: Refusing, content_type: str) -> None:
    response = await refusing.client.post(
        "/v1/messages",
        content=json.dumps(VALID).encode(),
        headers={**basic(refusing.account), "Content-Type": content_type},
    )
    assert_problem(response, 415, f"{ERRORS}#content-type-header", "Unsupported Content-Type header")
    assert await stored_counts(refusing.runtime) == (0, 0)


async def test_missing_content_type_is_415(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    request = client.build_request(
        "POST", "/v1/messages", content=json.dumps(VALID).encode(), headers=basic(account)
    )
    request.headers.pop("content-type", None)
    assert "content-type" not in request.headers
    response = await client.send(request)
    assert_problem(response, 415, f"{ERRORS}#content-type-header", "Unsupported Content-Type header")


async def test_a_form_post_is_415(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    response = await client.post(
        "/v1/messages", data={"channel": "sms", "to": "447700900000"}, headers=basic(account)
    )
    assert_problem(response, 415, f"{ERRORS}#content-type-header", "Unsupported Content-Type header")
    assert await stored_counts(runtime) == (0, 0)


@pytest.mark.parametrize("content", [b"[]", b"[{}]", b"42", b"-1.5", b'"sms"', b"null", b"true"])
async def test_json_that_is_not_an_object_is_422(refusing: Refusing, content: bytes) -> None:
    response = await refusing.client.post(
        "/v1/messages",
        content=content,
        headers={**basic(refusing.account), "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422, f"{ERRORS}/messages#1150", "Invalid params")
    assert [p["name"] for p in problem["invalid_parameters"]] == ["body"]
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize("content", [b"[" * 100_000, b'{"a":' * 50_000], ids=["arrays", "objects"])
async def test_deeply_nested_json_is_refused_without_a_server_error(
    refusing: Refusing, content: bytes
) -> None:
    response = await refusing.client.post(
        "/v1/messages",
        content=content,
        headers={**basic(refusing.account), "Content-Type": "application/json"},
    )
    assert_problem(response, 422, f"{ERRORS}#invalid-json", "The request body did not contain valid JSON")
    assert await stored_counts(refusing.runtime) == (0, 0)


def _padded_body(size: int) -> bytes:
    """A valid request padded with white space to exactly `size` bytes."""
    raw = json.dumps(VALID).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def test_a_body_of_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, settings: Settings
) -> None:
    content = _padded_body(settings.max_body_bytes)
    assert len(content) == settings.max_body_bytes
    response = await client.post(
        "/v1/messages", content=content, headers={**basic(account), "Content-Type": "application/json"}
    )
    assert_accepted(response)


async def test_oversized_body_with_content_length_is_413(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, settings: Settings
) -> None:
    content = _padded_body(settings.max_body_bytes + 1)
    response = await client.post(
        "/v1/messages", content=content, headers={**basic(account), "Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(settings.max_body_bytes + 1)
    problem = assert_problem(response, 413, f"{ERRORS}#payload-too-large", "Payload too large")
    assert str(settings.max_body_bytes) in problem["detail"]
    assert await stored_counts(runtime) == (0, 0)


async def test_oversized_streamed_body_without_content_length_is_413(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, settings: Settings
) -> None:
    content = _padded_body(settings.max_body_bytes + 10)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    response = await client.post(
        "/v1/messages", content=chunks(), headers={**basic(account), "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, f"{ERRORS}#payload-too-large", "Payload too large")
    assert await stored_counts(runtime) == (0, 0)


async def test_a_streamed_body_under_the_limit_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    content = json.dumps(VALID).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for byte in range(0, len(content), 7):
            yield content[byte : byte + 7]

    response = await client.post(
        "/v1/messages", content=chunks(), headers={**basic(account), "Content-Type": "application/json"}
    )
    assert_accepted(response)
    assert await stored_counts(runtime) == (1, 1)


async def test_an_oversized_body_is_refused_even_without_credentials(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    """The size check runs before anything else, so nobody can make the server buffer a huge body."""
    response = await client.post(
        "/v1/messages",
        content=b" " * (settings.max_body_bytes + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


# --- routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("POST", "/v1/message"), ("POST", "/v2/messages")]
)
async def test_unknown_route_is_404_problem(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, json=VALID)
    problem = assert_problem(response, 404, f"{ERRORS}#not-found", "Not Found")
    assert path in problem["detail"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_wrong_verb_on_v1_messages_is_405_problem(
    client: httpx.AsyncClient, account: NewAccountCredentials, method: str
) -> None:
    response = await client.request(method, "/v1/messages", headers=basic(account))
    problem = assert_problem(response, 405, f"{ERRORS}#wrong-verb", "Request method not allowed")
    assert method in problem["detail"]


# --- never a 500 ---------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = {**VALID, "ttl": 600, "client_ref": "ref", "webhook_url": "https://example.com/s",
          "webhook_version": "v1", "trusted_recipient": True, "sms": {"encoding_type": "auto"}}  # fmt: skip
# Each member is absent, its valid value, or any JSON value, so runs reach deep into validation
# as well as failing early.
NEAR_VALID = st.fixed_dictionaries(
    {}, optional={name: st.just(value) | JSON_VALUES for name, value in FIELDS.items()}
)
ANY_OBJECT = st.dictionaries(st.sampled_from([*FIELDS, "x"]) | st.text(max_size=10), JSON_VALUES, max_size=8)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=NEAR_VALID | ANY_OBJECT)
async def test_arbitrary_json_objects_get_202_or_422_and_only_202s_are_stored(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, body: dict[str, Any]
) -> None:
    before = await stored_counts(runtime)
    response = await client.post("/v1/messages", json=body, headers=basic(account))
    assert response.status_code in {202, 422}, (body, response.text)
    event(f"status {response.status_code}")
    after = await stored_counts(runtime)
    if response.status_code == 202:
        assert_accepted(response)
        assert after == (before[0] + 1, before[1] + 1)
    else:
        problem = response.json()
        assert {"type", "title", "detail", "instance"} <= set(problem)
        assert problem["type"].startswith(ERRORS)
        assert after == before


# --- operational endpoints beside the send path --------------------------------------------------


async def test_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()
    assert "/openapi.json" in response.text


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_openapi_names_v1_messages_with_the_sms_request_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    operation = document["paths"]["/v1/messages"]["post"]
    variants = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    sms = next(v for v in variants if {"to", "from", "text", "sms"} <= set(v.get("properties", {})))
    assert {"channel", "message_type", "to", "from", "text"} <= set(sms["required"])
    assert {"ttl", "client_ref", "webhook_url", "webhook_version", "trusted_recipient"} <= set(
        sms["properties"]
    )
    assert {"202", "401", "422"} <= set(operation["responses"])
    # every reference in the document resolves inside it
    for ref in _refs(document):
        _resolve(document, ref)
