"""What the SDK channel tests share: the parties on each channel, sending through the simulated
network, checking the signed status webhooks of many messages at once, and the channel-by-type
matrix they print and assert."""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from vonage_jwt import verify_signature

from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import Received, WebhookReceiver

# Who sends to whom on each channel. Recipients ending in 9901-9905 choose other outcomes in the
# simulator (tidings/channels/simulator/scenarios.py): none of the parties' do; the last two below
# choose theirs on purpose.
PHONE = "447700900100"
SMS_SENDER = "Acme"
MMS_SENDER, MMS_PHONE = "14155550100", "14155550123"
WHATSAPP_BUSINESS, WHATSAPP_USER = "447700900200", "447700900300"
MESSENGER_PAGE, MESSENGER_USER = "106117208877441", "5109232462526543"
VIBER_SERVICE = "16273"
RCS_AGENT = "tidings_agent"
NEVER_ANSWERS = "447700909905"  # submitted, then nothing: still revocable
DELIVERED_NEVER_READ = "447700909904"

# Channels whose platforms report reads (the Messages API's status webhook: `read`), as the
# Vonage documentation describes them; kept here rather than read from Tidings' own registry.
READ_CHANNELS = frozenset({"whatsapp", "messenger", "viber_service", "rcs"})

WEBHOOK_TIMEOUT = 30.0


def expected_statuses(channel: str) -> list[str]:
    return ["submitted", "delivered", "read"] if channel in READ_CHANNELS else ["submitted", "delivered"]


def accepted_result(channel: str) -> str:
    """The matrix cell of a message that was accepted and went the whole way."""
    return "202 " + "→".join(expected_statuses(channel))


@dataclass
class Sent:
    """One message an SDK sent, and what came of it."""

    sdk_class: str
    channel: str
    message_type: str
    to: str
    sender: str
    client_ref: str
    webhook_path: str  # where its statuses should arrive
    application_id: str | None = None  # sent with this application's JWT
    uuid: str | None = None
    refused: str | None = None  # the error, when it was not accepted


def tls_verify(server: TidingsServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_path))


def simulate_inbound(server: TidingsServer, credentials: Credentials, body: dict[str, Any]) -> str:
    """POST /sim/inbound: the simulated network delivers a message to one of the account's
    addresses; returns the inbound message's uuid."""
    response = httpx.post(
        f"{server.tls_url}/sim/inbound",
        json=body,
        auth=credentials.basic,
        verify=tls_verify(server),
        timeout=10,
    )
    assert response.status_code == 202, response.text
    uuid = response.json()["message_uuid"]
    assert isinstance(uuid, str)
    return uuid


def message_view(server: TidingsServer, credentials: Credentials, uuid: str) -> dict[str, Any]:
    """GET /v1/messages/{uuid} (a Tidings extension): the message as stored, with its status."""
    response = httpx.get(
        f"{server.tls_url}/v1/messages/{uuid}", auth=credentials.basic, verify=tls_verify(server), timeout=10
    )
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def link_whatsapp(server: TidingsServer, credentials: Credentials, application_id: str) -> None:
    """The business number becomes the account's, its inbound messages the application's."""
    server.cli(
        "external-accounts",
        "link",
        "--channel",
        "whatsapp",
        "--id",
        WHATSAPP_BUSINESS,
        "--account",
        credentials.api_key,
        "--app-id",
        application_id,
    )


def inbound_whatsapp(server: TidingsServer, credentials: Credentials, text: str) -> str:
    return simulate_inbound(
        server,
        credentials,
        {"channel": "whatsapp", "from": WHATSAPP_USER, "to": WHATSAPP_BUSINESS, "text": text},
    )


# --- the status webhooks ----------------------------------------------------------------------


def webhooks_by_message(receiver: WebhookReceiver) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for webhook in list(receiver.received):
        uuid = webhook.json().get("message_uuid")
        if isinstance(uuid, str) and "status" in webhook.json():
            found.setdefault(uuid, []).append(webhook)
    return found


def wait_for_statuses(receiver: WebhookReceiver, wanted: dict[str, list[str]], timeout: float) -> None:
    """Until every message in `wanted` had a webhook of each status listed for it, or the timeout;
    does not raise, so that the caller can show what did arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = webhooks_by_message(receiver)
        if all(
            set(statuses) <= {w.json()["status"] for w in seen.get(uuid, [])}
            for uuid, statuses in wanted.items()
        ):
            return
        time.sleep(0.05)


def signature_problem(webhook: Received, credentials: Credentials, application_id: str | None) -> str | None:
    """Why this webhook is not signed as the Messages API signs them, or None."""
    if not webhook.headers.get("authorization", "").startswith("Bearer "):
        return "no bearer token"
    if verify_signature(webhook.bearer, credentials.signature_secret) is not True:
        return "signature does not verify"
    claims = jwt.decode(webhook.bearer, credentials.signature_secret, algorithms=["HS256"])
    if claims.get("payload_hash") != hashlib.sha256(webhook.body).hexdigest():
        return "payload_hash is not the body's sha256"
    if claims.get("api_key") != credentials.api_key:
        return f"api_key claim {claims.get('api_key')!r}"
    if application_id is not None and claims.get("application_id") != application_id:
        return f"application_id claim {claims.get('application_id')!r}"
    if not webhook.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {webhook.headers.get('content-type')!r}"
    return None


def result_of(sent: Sent, webhooks: list[Received], credentials: Credentials) -> str:
    """The matrix cell: `202 submitted→delivered→read` when accepted and every status webhook
    arrived in order, signed, at the right URL and about this message; else what went wrong."""
    if sent.refused is not None:
        return f"refused: {sent.refused}"
    for webhook in webhooks:
        body = webhook.json()
        if webhook.path != sent.webhook_path:
            return f"webhook at {webhook.path}, not {sent.webhook_path}"
        problem = signature_problem(webhook, credentials, sent.application_id)
        if problem is not None:
            return f"badly signed webhook: {problem}"
        got = (body.get("channel"), body.get("to"), body.get("from"), body.get("client_ref"))
        if got != (sent.channel, sent.to, sent.sender, sent.client_ref):
            return f"webhook about {got}"
    return "202 " + "→".join(w.json()["status"] for w in webhooks)


def outcomes(sent: Iterable[Sent], receiver: WebhookReceiver, credentials: Credentials) -> dict[str, str]:
    """Waits for every accepted message's statuses (up to a timeout), then gives each SDK class its
    matrix cell."""
    sent = list(sent)
    wait_for_statuses(
        receiver,
        {s.uuid: expected_statuses(s.channel) for s in sent if s.uuid is not None},
        timeout=WEBHOOK_TIMEOUT,
    )
    by_message = webhooks_by_message(receiver)
    return {s.sdk_class: result_of(s, by_message.get(s.uuid or "", []), credentials) for s in sent}


def render(title: str, sent: Iterable[Sent], cells: dict[str, str]) -> str:
    """The matrix as a table: channel, type, SDK class, result."""
    lines = [title, f"  {'channel':<14} {'type':<9} {'SDK class':<26} result"]
    for s in sorted(sent, key=lambda s: (s.channel, s.message_type)):
        lines.append(f"  {s.channel:<14} {s.message_type:<9} {s.sdk_class:<26} {cells[s.sdk_class]}")
    return "\n".join(lines)


def create_application(
    server: TidingsServer, credentials: Credentials, receiver: WebhookReceiver
) -> dict[str, Any]:
    """POST /v2/applications (keys generated by Tidings): inbound messages to the receiver's
    /inbound, statuses to its /app-status."""
    response = httpx.post(
        f"{server.tls_url}/v2/applications",
        json={
            "name": "SDK channels",
            "capabilities": {
                "messages": {
                    "webhooks": {
                        "inbound_url": {"address": f"{receiver.url}/inbound", "http_method": "POST"},
                        "status_url": {"address": f"{receiver.url}/app-status", "http_method": "POST"},
                    },
                    "version": "v1",
                }
            },
        },
        auth=credentials.basic,
        verify=tls_verify(server),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    application: dict[str, Any] = response.json()
    return application
