"""`tidings webhooks listen`, run as a user runs it, receiving real HTTP posts."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from tidings.auth.webhook_signing import WebhookSigner

SECRET = "a-signature-secret-of-some-length"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[tuple[str, queue.Queue[str]]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tidings", "webhooks", "listen", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TIDINGS_SIGNATURE_SECRET": SECRET},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    started = process.stderr.readline()
    assert "Listening for webhooks" in started, started
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        process.terminate()
        process.wait(timeout=10)


def _next_block(lines: queue.Queue[str]) -> tuple[str, dict[str, object]]:
    """The header line of the next webhook printed, and its body."""
    header = lines.get(timeout=10)
    body = ""
    while True:
        body += lines.get(timeout=10)
        try:
            return header, json.loads(body)
        except ValueError:
            continue


def test_it_prints_each_webhook_and_checks_its_signature(listener: tuple[str, queue.Queue[str]]) -> None:
    url, lines = listener
    body = json.dumps(
        {"message_uuid": "0c8a4b2e-0000-4000-8000-000000000001", "status": "delivered"}
    ).encode()
    good = WebhookSigner(SECRET).sign(body, api_key="abc123")
    bad = WebhookSigner("another signature secret, also long enough").sign(body, api_key="abc123")
    with httpx.Client() as client:
        for token in (good, bad, None):
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            assert client.post(f"{url}/status", content=body, headers=headers).status_code == 200
            header, printed = _next_block(lines)
            assert "POST /status" in header
            assert printed["status"] == "delivered"
            expected = {good: "[signature ok]", bad: "[SIGNATURE INVALID]", None: "[unsigned]"}[token]
            assert expected in header
    # A body altered after signing fails the check, although the token itself is genuine.
    with httpx.Client() as client:
        client.post(
            f"{url}/status",
            content=body.replace(b"delivered", b"rejected"),
            headers={"Authorization": f"Bearer {good}"},
        )
    header, printed = _next_block(lines)
    assert printed["status"] == "rejected" and "[SIGNATURE INVALID]" in header
