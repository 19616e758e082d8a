"""Sending an SMS through a real `tidings serve` with the official Vonage SDK and plain HTTP.

The tests share one server per backend (module_server), each with webhooks to a receiver of its own."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import AuthenticationError
from vonage_jwt import verify_signature
from vonage_messages import Sms

from tests.e2e.conftest import SharedServer
from tests.e2e.server import Credentials, TidingsServer, statuses_by_message
from tests.receiver import Received, WebhookReceiver

pytestmark = pytest.mark.e2e

TO, FROM = "447700900000", "Acme"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def server(module_server: SharedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TidingsServer]:
    # requests (under the SDK) reads the CA bundle from the environment on every request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_server.server.ca_path))
    yield module_server.server


@pytest.fixture
def credentials(module_server: SharedServer) -> Credentials:
    return module_server.credentials


def sdk_client(server: TidingsServer, api_key: str, api_secret: str) -> Vonage:
    host = f"127.0.0.1:{server.tls_port}"
    return Vonage(
        Auth(api_key=api_key, api_secret=api_secret),
        HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0),
    )


def assert_signed(webhook: Received, credentials: Credentials) -> None:
    assert webhook.headers.get("authorization", "").startswith("Bearer ")
    assert verify_signature(webhook.bearer, credentials.signature_secret) is True
    claims = jwt.decode(webhook.bearer, credentials.signature_secret, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(webhook.body).hexdigest()
    assert claims["api_key"] == credentials.api_key
    assert webhook.headers["content-type"].startswith("application/json")


def assert_v1_status(body: dict[str, object], uuid: str, status: str, client_ref: str) -> None:
    assert body["message_uuid"] == uuid
    assert body["status"] == status
    assert body["to"] == TO
    assert body["from"] == FROM
    assert body["channel"] == "sms"
    assert body["client_ref"] == client_ref
    assert isinstance(body["timestamp"], str) and TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    usage = body["usage"]
    assert isinstance(usage, dict)
    assert isinstance(usage["currency"], str) and len(usage["currency"]) == 3
    assert isinstance(usage["price"], str) and float(usage["price"]) >= 0
    sms = body["sms"]
    assert isinstance(sms, dict)
    assert sms["count_total"] == "1"


def only_webhooks_of(receiver: WebhookReceiver, uuid: str, count: int) -> list[Received]:
    """Waits for `count` webhooks of one message, then a moment longer to see that no more come."""
    deadline = time.monotonic() + 15
    while len(mine := [r for r in receiver.received if r.json()["message_uuid"] == uuid]) < count:
        assert time.monotonic() < deadline, f"expected {count} webhooks for {uuid}, got {mine}"
        time.sleep(0.05)
    time.sleep(0.5)
    return [r for r in receiver.received if r.json()["message_uuid"] == uuid]


def test_sdk_sends_sms_over_https_and_receives_signed_statuses(
    server: TidingsServer, credentials: Credentials, receiver: WebhookReceiver
) -> None:
    client = sdk_client(server, credentials.api_key, credentials.api_secret)

    response = client.messages.send(
        Sms(to=TO, from_=FROM, text="Hello from the SDK", client_ref="sdk-1", webhook_url=f"{receiver.url}/s")
    )

    uuid = response.message_uuid
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid)
    webhooks = only_webhooks_of(receiver, uuid, 2)
    assert [w.json()["status"] for w in webhooks] == ["submitted", "delivered"]
    for webhook, status in zip(webhooks, ["submitted", "delivered"], strict=True):
        assert webhook.path == "/s"
        assert_signed(webhook, credentials)
        assert_v1_status(webhook.json(), uuid, status, "sdk-1")


def test_sdk_with_wrong_credentials_raises_authentication_error(
    server: TidingsServer, credentials: Credentials, receiver: WebhookReceiver
) -> None:
    wrong_secret = sdk_client(server, credentials.api_key, "Wrong-secret-123")
    unknown_key = sdk_client(server, "deadbeef", credentials.api_secret)
    sms = Sms(to=TO, from_=FROM, text="nope", webhook_url=f"{receiver.url}/s")

    for client in (wrong_secret, unknown_key):
        with pytest.raises(AuthenticationError) as raised:
            client.messages.send(sms)
        assert raised.value.response.status_code == 401
        assert raised.value.response.headers["content-type"].startswith("application/problem+json")

    time.sleep(0.5)
    assert receiver.received == []


def test_plain_http_send(server: TidingsServer, credentials: Credentials, receiver: WebhookReceiver) -> None:

    response = httpx.post(
        f"{server.url}/v1/messages",
        json={
            "channel": "sms",
            "message_type": "text",
            "to": TO,
            "from": FROM,
            "text": "Hello over plain HTTP",
            "client_ref": "curl-1",
            "webhook_url": f"{receiver.url}/plain",
        },
        auth=credentials.basic,
        headers={"Accept": "application/json"},
        timeout=10,
    )

    assert response.status_code == 202, response.text
    assert response.headers["content-type"].startswith("application/json")
    uuid = response.json()["message_uuid"]
    webhooks = only_webhooks_of(receiver, uuid, 2)
    assert [w.json()["status"] for w in webhooks] == ["submitted", "delivered"]
    for webhook, status in zip(webhooks, ["submitted", "delivered"], strict=True):
        assert webhook.path == "/plain"
        assert_signed(webhook, credentials)
        assert_v1_status(webhook.json(), uuid, status, "curl-1")


def test_account_default_status_url_is_used_without_webhook_url(
    server: TidingsServer, receiver: WebhookReceiver
) -> None:
    credentials = server.create_account(status_url=f"{receiver.url}/account-default")  # on the running server
    client = sdk_client(server, credentials.api_key, credentials.api_secret)

    uuid = client.messages.send(Sms(to=TO, from_=FROM, text="no webhook_url", client_ref="dflt")).message_uuid

    webhooks = only_webhooks_of(receiver, uuid, 2)
    assert statuses_by_message(webhooks) == {uuid: ["submitted", "delivered"]}
    assert {w.path for w in webhooks} == {"/account-default"}
    for webhook in webhooks:
        assert_signed(webhook, credentials)
