"""Inbound messaging through a real `tidings serve --tls`, set up with the official Vonage SDK as a
user would: create an application whose Messages capability points at a receiver, search, buy and
link a number with the Numbers client, let the simulated network deliver an SMS to that number,
receive it signed at the inbound URL in the application's Messages API version, then answer it
with the application's JWT and receive the reply's statuses at the status URL."""

from __future__ import annotations

import hashlib
import re
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from vonage import Auth, HttpClientOptions, Vonage
from vonage_application import (
    ApplicationConfig,
    ApplicationData,
    ApplicationUrl,
    Capabilities,
    Messages,
    MessagesWebhooks,
)
from vonage_jwt import verify_signature
from vonage_messages import Sms
from vonage_numbers import (
    ListOwnedNumbersFilter,
    NumberFeatures,
    NumberParams,
    SearchAvailableNumbersFilter,
    UpdateNumberParams,
)

from tests.e2e.conftest import SharedServer
from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import Received, WebhookReceiver

pytestmark = pytest.mark.e2e

SENDER = "447700900123"
TEXT = "hello tidings"
REPLY = "hello back"
V1_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
V01_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def server(module_server: SharedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TidingsServer]:
    """One server per backend for the module's tests, each with a receiver of its own."""
    # requests (under the SDK) reads the CA bundle from the environment on every request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(module_server.server.ca_path))
    yield module_server.server


def options(server: TidingsServer) -> HttpClientOptions:
    host = f"127.0.0.1:{server.tls_port}"
    return HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0)


def webhooks_at(receiver: WebhookReceiver, path: str, count: int, *, settle: float = 0.5) -> list[Received]:
    """Waits for `count` webhooks at `path`, then a moment longer to see that no more come."""
    deadline = time.monotonic() + 15
    while len([r for r in receiver.received if r.path == path]) < count:
        assert time.monotonic() < deadline, f"expected {count} webhooks at {path}, got {receiver.received}"
        time.sleep(0.05)
    time.sleep(settle)
    return [r for r in receiver.received if r.path == path]


def assert_signed_for(webhook: Received, credentials: Credentials, application_id: str) -> None:
    assert webhook.headers.get("authorization", "").startswith("Bearer ")
    assert webhook.headers["content-type"].startswith("application/json")
    assert verify_signature(webhook.bearer, credentials.signature_secret) is True
    claims: dict[str, Any] = jwt.decode(webhook.bearer, credentials.signature_secret, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(webhook.body).hexdigest()
    assert claims["application_id"] == application_id
    assert claims["api_key"] == credentials.api_key


def create_application(
    vonage: Vonage, receiver: WebhookReceiver, version: str
) -> tuple[ApplicationData, str]:
    application = vonage.application.create_application(
        ApplicationConfig(
            name="Inbound application",
            capabilities=Capabilities(
                messages=Messages(
                    webhooks=MessagesWebhooks(
                        inbound_url=ApplicationUrl(address=f"{receiver.url}/inbound", http_method="POST"),
                        status_url=ApplicationUrl(address=f"{receiver.url}/status", http_method="POST"),
                    ),
                    version=version,
                )
            ),
        )
    )
    assert application.keys is not None
    private_key = (application.keys.model_extra or {}).get("private_key")
    assert isinstance(private_key, str) and private_key.startswith("-----BEGIN PRIVATE KEY-----")
    return application, private_key


def rent_and_link(vonage: Vonage, country: str, application_id: str) -> str:
    """Searches, buys and links one SMS-capable number; returns its msisdn."""
    available, count, _next = vonage.numbers.search_available_numbers(
        SearchAvailableNumbersFilter(country=country, features=NumberFeatures.SMS, size=10)
    )
    assert available and count >= len(available)
    chosen = available[0]
    assert chosen.country == country and chosen.msisdn and "SMS" in (chosen.features or [])

    bought = vonage.numbers.buy_number(NumberParams(country=country, msisdn=chosen.msisdn))
    assert (bought.error_code, bought.error_code_label) == ("200", "success")
    linked = vonage.numbers.update_number(
        UpdateNumberParams(country=country, msisdn=chosen.msisdn, app_id=application_id)
    )
    assert (linked.error_code, linked.error_code_label) == ("200", "success")

    owned, total, _next = vonage.numbers.list_owned_numbers(
        ListOwnedNumbersFilter(application_id=application_id)
    )
    assert total == 1 and [n.msisdn for n in owned] == [chosen.msisdn]
    assert owned[0].app_id == application_id
    assert (owned[0].messages_callback_type, owned[0].messages_callback_value) == ("app", application_id)
    # Rented numbers leave the search results.
    again, _count, _next = vonage.numbers.search_available_numbers(
        SearchAvailableNumbersFilter(country=country, features=NumberFeatures.SMS, size=100)
    )
    assert chosen.msisdn not in {n.msisdn for n in again}
    return chosen.msisdn


def simulate_inbound(server: TidingsServer, credentials: Credentials, to: str) -> httpx.Response:
    return httpx.post(
        f"{server.tls_url}/sim/inbound",
        auth=credentials.basic,
        json={"channel": "sms", "from": SENDER, "to": to, "text": TEXT},
        verify=ssl.create_default_context(cafile=str(server.ca_path)),
        timeout=10,
    )


def assert_v1_inbound(body: dict[str, Any], uuid: str, number: str) -> None:
    assert list(body)[:7] == ["channel", "message_uuid", "to", "from", "timestamp", "message_type", "text"]
    assert body["channel"] == "sms"
    assert body["message_uuid"] == uuid
    assert (body["to"], body["from"]) == (number, SENDER)
    assert V1_TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert (body["message_type"], body["text"]) == ("text", TEXT)
    assert body["sms"] == {"num_messages": "1", "keyword": "HELLO"}
    assert set(body["usage"]) == {"currency", "price"}
    assert body["origin"]["network_code"]


def assert_v01_inbound(body: dict[str, Any], uuid: str, number: str) -> None:
    assert "channel" not in body and "message_type" not in body
    assert body["message_uuid"] == uuid
    assert body["to"] == {"type": "sms", "number": number}
    assert body["from"] == {"type": "sms", "number": SENDER}
    assert V01_TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert body["message"] == {"content": {"type": "text", "text": TEXT}, "sms": {"num_messages": "1"}}
    assert set(body["usage"]) == {"currency", "price"}


@pytest.mark.parametrize(("version", "country"), [("v1", "GB"), ("v0.1", "US")])
def test_an_sms_to_a_linked_number_reaches_the_inbound_url_signed_and_the_reply_gets_statuses(
    module_server: SharedServer, server: TidingsServer, receiver: WebhookReceiver, version: str, country: str
) -> None:
    credentials = module_server.credentials
    vonage = Vonage(Auth(api_key=credentials.api_key, api_secret=credentials.api_secret), options(server))

    application, private_key = create_application(vonage, receiver, version)
    number = rent_and_link(vonage, country, application.id)

    answer = simulate_inbound(server, credentials, number)
    assert answer.status_code == 202, answer.text
    inbound_uuid = answer.json()["message_uuid"]
    assert answer.json() == {"message_uuid": inbound_uuid, "webhook_format": version}

    [inbound] = webhooks_at(receiver, "/inbound", 1)
    assert_signed_for(inbound, credentials, application.id)
    body = inbound.json()
    if version == "v1":
        assert_v1_inbound(body, inbound_uuid, number)
        reply_to = body["from"]
    else:
        assert_v01_inbound(body, inbound_uuid, number)
        reply_to = body["from"]["number"]

    # Answer from the linked number, authenticated as the application.
    sender = Vonage(Auth(application_id=application.id, private_key=private_key), options(server))
    reply_uuid = sender.messages.send(Sms(to=reply_to, from_=number, text=REPLY)).message_uuid
    assert reply_uuid != inbound_uuid

    statuses = webhooks_at(receiver, "/status", 2)
    assert [s.json()["status"] for s in statuses] == ["submitted", "delivered"]
    for status in statuses:
        assert_signed_for(status, credentials, application.id)
        reported = status.json()
        assert reported["message_uuid"] == reply_uuid
        if version == "v1":
            assert (reported["to"], reported["from"], reported["channel"]) == (SENDER, number, "sms")
        else:
            assert reported["to"] == {"type": "sms", "number": SENDER}
            assert reported["from"] == {"type": "sms", "number": number}
    # The inbound message got exactly one webhook and nothing else reached the inbound URL.
    assert [r.path for r in receiver.received].count("/inbound") == 1


def test_an_sms_to_a_number_of_another_account_is_not_delivered_and_reveals_nothing(
    server: TidingsServer, receiver: WebhookReceiver
) -> None:
    owner, intruder = server.create_account(), server.create_account()
    vonage = Vonage(Auth(api_key=owner.api_key, api_secret=owner.api_secret), options(server))
    application, _private_key = create_application(vonage, receiver, "v1")
    number = rent_and_link(vonage, "GB", application.id)

    forged = simulate_inbound(server, intruder, number)
    unrented = simulate_inbound(server, intruder, "447700900999")
    assert forged.status_code == unrented.status_code == 404
    assert forged.json().keys() == unrented.json().keys()

    time.sleep(0.5)
    assert receiver.received == []
