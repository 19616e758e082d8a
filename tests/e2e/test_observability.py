"""A real `tidings serve` in production dress: JSON logs on stderr and an operations listener.

One message sent through to its webhooks; then its log must be JSON from the first line to the
last (uvicorn's own lines too), tell the story (the request, the accepted message, each webhook
with its receiver's host), and hold no secret, not even the token in the webhook URL's query.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import MakeServer
from tests.e2e.server import free_port
from tests.receiver import WebhookReceiver

HOOK_TOKEN = "hook-token-never-logged"


def test_json_logs_and_the_operations_listener(make_server: MakeServer, tmp_path: Path) -> None:
    ops_port = free_port()
    server = make_server(
        TIDINGS_LOG_FORMAT="json",
        TIDINGS_OPS_PORT=str(ops_port),
        TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS="0.05",
    )
    server.stderr_path = tmp_path / "stderr.log"
    server.start()
    credentials = server.create_account()
    ops = f"http://127.0.0.1:{ops_port}"
    with WebhookReceiver() as receiver:
        sent = httpx.post(
            f"{server.url}/v1/messages",
            auth=credentials.basic,
            json={
                "channel": "sms",
                "message_type": "text",
                "to": "447700900000",
                "from": "Acme",
                "text": "hello",
                "webhook_url": f"{receiver.url}/status?token={HOOK_TOKEN}",
            },
        )
        assert sent.status_code == 202, sent.text
        uuid = sent.json()["message_uuid"]
        receiver.wait_for(2)

    # /metrics lives on the operations listener only; the probes are on both.
    assert httpx.get(f"{server.url}/metrics").status_code == 404
    assert httpx.get(f"{ops}/health").json()["status"] == "ok"
    ready = httpx.get(f"{ops}/ready")
    assert (ready.status_code, ready.json()["checks"]) == (200, {"database": "ok", "connectors": "ok"})
    exposition = httpx.get(f"{ops}/metrics").text
    accepted = [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "tidings_accepts_total"
        and sample.labels == {"channel": "sms", "outcome": "accepted"}
    ]
    assert accepted == [1.0]
    assert server.stop() == 0

    assert server.stderr_path is not None
    text = server.stderr_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line, or this raises
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    assert any(line["message"].startswith("Tidings listening on http://127.0.0.1:") for line in lines)
    (access,) = [
        line for line in lines if line["logger"] == "tidings.access" and line["path"] == "/v1/messages"
    ]
    assert (access["method"], access["status"], access["api_key"]) == ("POST", 202, credentials.api_key)
    assert access["latency_ms"] > 0
    assert (access["message_uuid"], access["channel"]) == (uuid, "sms")
    webhooks = [line for line in lines if line["logger"] == "tidings.webhooks"]
    assert [(w["message"], w["message_uuid"], w["host"], w["status"], w["attempt"]) for w in webhooks] == [
        ("webhook delivered", uuid, "127.0.0.1", 200, 1),
        ("webhook delivered", uuid, "127.0.0.1", 200, 1),
    ]
    for secret in (credentials.api_secret, credentials.signature_secret, HOOK_TOKEN):
        assert secret not in text


def test_the_operations_listener_keeps_a_connection_budget_of_its_own(make_server: MakeServer) -> None:
    """A flood of API clients must not lock the orchestrator's probes out."""
    ops_port = free_port()
    server = make_server(
        TIDINGS_OPS_PORT=str(ops_port),
        TIDINGS_HTTP_MAX_CONNECTIONS="2",
        TIDINGS_HTTP_HEAD_TIMEOUT_SECONDS="60",
        TIDINGS_HTTP_TLS_HANDSHAKE_TIMEOUT_SECONDS="60",
    )
    server.start()
    api = urlsplit(server.url)
    held = [socket.create_connection((api.hostname, api.port)) for _ in range(2)]
    try:
        # The server accepts in its own time: ask until the two held connections are counted.
        deadline = time.monotonic() + 15
        while httpx.get(f"{server.url}/health").status_code != 503:
            assert time.monotonic() < deadline, "the held connections were not counted"
        assert httpx.get(f"http://127.0.0.1:{ops_port}/health").status_code == 200
    finally:
        for sock in held:
            sock.close()
