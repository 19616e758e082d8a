"""The happy path through the ASGI app on both databases."""

from __future__ import annotations

import asyncio
import base64

import httpx

from tests.receiver import WebhookReceiver
from tidings.auth.webhook_signing import verify_webhook
from tidings.services.accounts import NewAccountCredentials


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_send_sms_and_receive_signed_statuses(
    client: httpx.AsyncClient, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    response = await client.post(
        "/v1/messages",
        json={
            "channel": "sms",
            "message_type": "text",
            "to": "447700900000",
            "from": "Acme",
            "text": "hello",
            "client_ref": "ref-1",
            "webhook_url": f"{receiver.url}/status",
        },
        headers=basic(account),
    )
    assert response.status_code == 202, response.text
    uuid = response.json()["message_uuid"]
    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]
    for webhook in received:
        body = webhook.json()
        assert body["message_uuid"] == uuid
        assert body["client_ref"] == "ref-1"
        assert verify_webhook(webhook.bearer, webhook.body, account.signature_secret)
