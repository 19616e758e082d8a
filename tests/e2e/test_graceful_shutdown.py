"""SIGTERM a real `tidings serve` under load: it finishes what it started, loses nothing, exits 0."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from vonage import Auth, HttpClientOptions, Vonage
from vonage_messages import Sms

from tests.e2e.conftest import MakeServer
from tests.e2e.server import delivery_jobs, stored_messages

pytestmark = pytest.mark.e2e

# Enough that SIGTERM lands mid-stream: uvicorn notices it on its next 0.1 s tick, and until then
# it goes on answering, 150 requests and more on a fast machine.
REQUESTS = 1000
SIGTERM_AFTER = 50  # answers
GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class Outcome:
    client_ref: str
    kind: str  # accepted | refused | unanswered | broken
    detail: str = ""


def classify(client: httpx.Client, url: str, body: dict[str, str]) -> Outcome:
    ref = body["client_ref"]
    try:
        response = client.post(url, json=body)
    except httpx.ConnectError as error:
        return Outcome(ref, "refused", repr(error))
    except httpx.RemoteProtocolError as error:
        # A keep-alive connection closed by the shutdown before this request was read is
        # "no answer"; a response whose headers came but whose body was cut is a failure.
        kind = "unanswered" if "without sending a response" in str(error) else "broken"
        return Outcome(ref, kind, repr(error))
    except (httpx.ReadError, httpx.WriteError) as error:
        return Outcome(ref, "unanswered", repr(error))
    except httpx.HTTPError as error:
        return Outcome(ref, "broken", repr(error))
    if response.status_code != 202:
        return Outcome(ref, "broken", f"{response.status_code} {response.text}")
    try:
        return Outcome(ref, "accepted", response.json()["message_uuid"])
    except (ValueError, KeyError) as error:
        return Outcome(ref, "broken", f"202 with {response.text!r}: {error!r}")


def test_sigterm_during_concurrent_sends(make_server: MakeServer, database_url: str) -> None:
    server = make_server(TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS="1")
    credentials = server.create_account()
    server.start()
    url = f"{server.url}/v1/messages"
    local = threading.local()
    clients: list[httpx.Client] = []
    answered = threading.Semaphore(0)

    def send(i: int) -> Outcome:
        if not hasattr(local, "client"):
            # One keep-alive connection per thread, as a pooled client would hold.
            local.client = httpx.Client(auth=credentials.basic, timeout=httpx.Timeout(10.0))
            clients.append(local.client)
        body = {
            "channel": "sms",
            "message_type": "text",
            "to": "447700900000",
            "from": "Acme",
            "text": f"load {i}",
            "client_ref": f"load-{i}",
        }
        try:
            return classify(local.client, url, body)
        finally:
            answered.release()

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(send, i) for i in range(REQUESTS)]
        for _ in range(SIGTERM_AFTER):
            assert answered.acquire(timeout=20), "the server stopped answering before SIGTERM"
        server.terminate()
        signalled = time.monotonic()
        outcomes = [future.result() for future in futures]
    exit_code = server.wait(GRACE_SECONDS + 10)
    took = time.monotonic() - signalled
    for client in clients:
        client.close()

    by_kind: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(outcome)
    print({kind: len(found) for kind, found in by_kind.items()}, f"exit {exit_code} after {took:.2f}s")
    assert by_kind.get("broken", []) == []
    assert exit_code == 0
    assert took < GRACE_SECONDS
    accepted = {o.detail: o.client_ref for o in by_kind["accepted"]}
    assert len(accepted) >= SIGTERM_AFTER - 16  # some answers may be failures counted above
    assert len(accepted) < REQUESTS, "every request was accepted: SIGTERM came too late to test anything"

    rows = stored_messages(database_url)
    missing = accepted.keys() - rows.keys()
    assert not missing, f"{len(missing)} of {len(accepted)} messages answered 202 are not in the database"
    assert all(rows[uuid]["client_ref"] == ref for uuid, ref in accepted.items())
    # Each is still to be delivered (its job queued) or was handed over before the stop (its job
    # done, and so deleted).
    queued = delivery_jobs(database_url).keys()
    assert all(uuid in queued or rows[uuid]["status"] != "accepted" for uuid in accepted)
    # A request the server read was answered: one closed on without an answer was never stored.
    stored_refs = {row["client_ref"] for row in rows.values()}
    unanswered = {o.client_ref for o in by_kind.get("unanswered", [])}
    assert not (unanswered & stored_refs), f"stored but never answered: {sorted(unanswered & stored_refs)}"
    assert len(rows) == len(accepted)


def test_idle_sdk_connections_over_tls_do_not_hold_up_shutdown(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK keeps its HTTPS connection open after a send; SIGTERM must not wait for it to go."""
    server = make_server()
    credentials = server.create_account()
    server.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
    host = f"127.0.0.1:{server.tls_port}"
    client = Vonage(
        Auth(api_key=credentials.api_key, api_secret=credentials.api_secret),
        HttpClientOptions(api_host=host, rest_host=host, timeout=10),
    )
    assert client.messages.send(Sms(to="447700900000", from_="Acme", text="hi")).message_uuid

    started = time.monotonic()
    exit_code = server.stop(timeout=GRACE_SECONDS)
    took = time.monotonic() - started

    assert exit_code == 0
    assert took < 5, f"shutdown took {took:.1f}s with one idle TLS keep-alive client"
    del client
