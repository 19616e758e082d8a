"""The Application API v2 through a real `tidings serve --tls`, driven by the official Vonage SDK:
create an application with generated keys, send an SMS with its JWT, receive its signed statuses
at its status_url; then list, get, update and delete it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from vonage import Auth, HttpClientOptions, Vonage
from vonage_application import (
    ApplicationConfig,
    ApplicationData,
    ApplicationUrl,
    Capabilities,
    ListApplicationsFilter,
    Messages,
    MessagesWebhooks,
    Privacy,
)
from vonage_http_client.errors import AuthenticationError, HttpRequestError, NotFoundError
from vonage_jwt import verify_signature
from vonage_messages import Sms

from tests.e2e.conftest import SharedServer
from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import Received, WebhookReceiver

pytestmark = pytest.mark.e2e

TO, FROM = "447700900000", "Acme"


@pytest.fixture
def server(module_server: SharedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TidingsServer]:
    """One server per backend for the module's tests, each with a receiver of its own."""
    # requests (under the SDK) reads the CA bundle from the environment on every request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_server.server.ca_path))
    yield module_server.server


def options(server: TidingsServer) -> HttpClientOptions:
    host = f"127.0.0.1:{server.tls_port}"
    return HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0)


def account_client(server: TidingsServer, credentials: Credentials) -> Vonage:
    return Vonage(Auth(api_key=credentials.api_key, api_secret=credentials.api_secret), options(server))


def application_client(server: TidingsServer, application: ApplicationData, private_key: str) -> Vonage:
    return Vonage(Auth(application_id=application.id, private_key=private_key), options(server))


def messages_capability(status_url: str, version: str) -> Capabilities:
    return Capabilities(
        messages=Messages(
            webhooks=MessagesWebhooks(
                inbound_url=ApplicationUrl(address=f"{status_url}/inbound", http_method="POST"),
                status_url=ApplicationUrl(address=status_url, http_method="POST"),
            ),
            version=version,
            authenticate_inbound_media=False,
        )
    )


def webhooks_of(receiver: WebhookReceiver, uuid: str, count: int) -> list[Received]:
    """Waits for `count` webhooks of one message, then a moment longer to see that no more come."""
    deadline = time.monotonic() + 15
    while len(mine := [r for r in receiver.received if r.json()["message_uuid"] == uuid]) < count:
        assert time.monotonic() < deadline, f"expected {count} webhooks for {uuid}, got {mine}"
        time.sleep(0.05)
    time.sleep(0.5)
    return [r for r in receiver.received if r.json()["message_uuid"] == uuid]


def assert_signed_for(webhook: Received, credentials: Credentials, application_id: str) -> dict[str, Any]:
    assert webhook.headers.get("authorization", "").startswith("Bearer ")
    assert verify_signature(webhook.bearer, credentials.signature_secret) is True
    claims: dict[str, Any] = jwt.decode(webhook.bearer, credentials.signature_secret, algorithms=["HS256"])
    assert claims["application_id"] == application_id
    assert claims["api_key"] == credentials.api_key
    assert claims["payload_hash"] == hashlib.sha256(webhook.body).hexdigest()
    return claims


@pytest.mark.parametrize("version", ["v1", "v0.1"])
def test_an_sdk_created_application_sends_with_its_jwt_and_gets_statuses_at_its_status_url(
    module_server: SharedServer, server: TidingsServer, receiver: WebhookReceiver, version: str
) -> None:
    credentials = module_server.credentials
    vonage = account_client(server, credentials)

    application = vonage.application.create_application(
        ApplicationConfig(
            name="SDK application",
            capabilities=messages_capability(f"{receiver.url}/app-status", version),
            privacy=Privacy(improve_ai=False),
        )
    )

    assert vonage.http_client.last_response.status_code == 201
    assert application.keys is not None and application.keys.public_key is not None
    private_key = (application.keys.model_extra or {}).get("private_key")
    assert isinstance(private_key, str) and private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert application.link == f"/v2/applications/{application.id}"
    assert application.capabilities is not None and application.capabilities.messages is not None
    assert application.capabilities.messages.version == version

    sender = application_client(server, application, private_key)
    uuid = sender.messages.send(Sms(to=TO, from_=FROM, text="Hello from the application")).message_uuid

    webhooks = webhooks_of(receiver, uuid, 2)
    assert [w.json()["status"] for w in webhooks] == ["submitted", "delivered"]
    for webhook in webhooks:
        assert webhook.path == "/app-status"
        assert_signed_for(webhook, credentials, application.id)
        body = webhook.json()
        if version == "v0.1":
            assert body["to"] == {"type": "sms", "number": TO}
            assert body["from"] == {"type": "sms", "number": FROM}
            assert "channel" not in body
        else:
            assert (body["to"], body["from"], body["channel"]) == (TO, FROM, "sms")


def test_sdk_lists_gets_updates_and_deletes_applications(
    server: TidingsServer, receiver: WebhookReceiver
) -> None:
    # Accounts of the test's own: it lists every application of one, and another sees none.
    credentials = server.create_account()
    other = server.create_account()
    vonage = account_client(server, credentials)

    created = [vonage.application.create_application(ApplicationConfig(name=f"app-{i}")) for i in range(3)]
    first, *_ = created

    listed, next_page = vonage.application.list_applications(ListApplicationsFilter(page_size=2, page=1))
    assert [a.id for a in listed] == [a.id for a in created[:2]]
    assert next_page == 2
    listed, next_page = vonage.application.list_applications(ListApplicationsFilter(page_size=2, page=2))
    assert [a.id for a in listed] == [created[2].id]
    assert next_page is None
    everything, next_page = vonage.application.list_applications()
    assert [a.id for a in everything] == [a.id for a in created] and next_page is None
    for application in everything:
        assert application.keys is not None and not application.keys.model_extra

    fetched = vonage.application.get_application(first.id)
    assert fetched.name == "app-0"
    assert fetched.keys is not None and fetched.keys.public_key == first.keys.public_key
    assert not fetched.keys.model_extra  # no private_key after creation

    updated = vonage.application.update_application(
        first.id,
        ApplicationConfig(name="renamed", capabilities=messages_capability(f"{receiver.url}/s", "v1")),
    )
    assert vonage.http_client.last_response.status_code == 200
    assert updated.name == "renamed"
    assert updated.capabilities is not None and updated.capabilities.messages is not None
    assert updated.keys is not None and updated.keys.public_key == first.keys.public_key
    assert not updated.keys.model_extra
    assert vonage.application.get_application(first.id).name == "renamed"

    with pytest.raises(HttpRequestError) as invalid:
        vonage.application.update_application(
            first.id,
            ApplicationConfig(name="x", keys={"public_key": "not a key"}),
        )
    assert invalid.value.response.status_code == 400
    assert invalid.value.response.json()["invalid_parameters"][0]["name"] == "keys.public_key"

    intruder = account_client(server, other)
    for attempt in (
        lambda: intruder.application.get_application(first.id),
        lambda: intruder.application.update_application(first.id, ApplicationConfig(name="stolen")),
        lambda: intruder.application.delete_application(first.id),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert intruder.application.list_applications() == ([], None)

    private_key = (first.keys.model_extra or {})["private_key"]
    sender = application_client(server, first, private_key)
    sender.messages.send(Sms(to=TO, from_=FROM, text="before delete"))

    vonage.application.delete_application(first.id)
    assert vonage.http_client.last_response.status_code == 204
    with pytest.raises(NotFoundError):
        vonage.application.get_application(first.id)
    with pytest.raises(AuthenticationError):
        sender.messages.send(Sms(to=TO, from_=FROM, text="after delete"))
    remaining, _ = vonage.application.list_applications()
    assert [a.id for a in remaining] == [a.id for a in created[1:]]
