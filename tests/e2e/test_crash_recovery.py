"""kill -9 a real `tidings serve` and start it again on the same database: nothing accepted is lost."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import (
    TidingsServer,
    leased_jobs,
    statuses_by_message,
    stored_messages,
    wait_for_statuses,
)
from tests.e2e.steady_load import sms
from tests.receiver import Received, WebhookReceiver

pytestmark = pytest.mark.e2e

# A short lease so that the jobs the killed process held are claimed again soon after the restart.
CRASHY = {"TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "3", "TIDINGS_JOB_LEASE_SECONDS": "2"}


def assert_in_order(received: list[Received], uuids: set[str]) -> None:
    """At-least-once allows repeats, but no message says `submitted` after it said `delivered`."""
    seen = statuses_by_message(received)
    for uuid in uuids:
        statuses = seen[uuid]
        assert set(statuses) == {"submitted", "delivered"}, (uuid, statuses)
        last_submitted = max(i for i, s in enumerate(statuses) if s == "submitted")
        first_delivered = statuses.index("delivered")
        assert last_submitted < first_delivered, (uuid, statuses)


def test_messages_accepted_before_kill_9_are_delivered_after_restart(
    make_server: MakeServer, receiver: WebhookReceiver, database_url: str
) -> None:
    server = make_server(**CRASHY)
    credentials = server.create_account()
    server.start()
    with httpx.Client(base_url=server.url, auth=credentials.basic, timeout=10) as client:
        responses = [client.post("/v1/messages", json=sms(receiver, f"crash-{i}")) for i in range(5)]
    assert [r.status_code for r in responses] == [202] * 5, [r.text for r in responses]
    uuids = {r.json()["message_uuid"] for r in responses}

    server.kill()

    assert not any(w.json()["status"] == "delivered" for w in receiver.received), "killed too late"
    rows = stored_messages(database_url)
    assert uuids <= rows.keys()
    server.start()
    wait_for_statuses(receiver, uuids, ["submitted", "delivered"], timeout=20)
    time.sleep(0.5)  # late duplicates, if any, would arrive now

    assert_in_order(list(receiver.received), uuids)
    rows = stored_messages(database_url)
    assert {uuid: rows[uuid]["status"] for uuid in uuids} == dict.fromkeys(uuids, "delivered")


def test_every_202_survives_kill_9_with_requests_in_flight(
    make_server: MakeServer, receiver: WebhookReceiver, database_url: str
) -> None:
    # Deliveries already due while the requests still come: the kill also lands amid worker jobs.
    server = make_server(**{**CRASHY, "TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "1"})
    credentials = server.create_account()
    server.start()
    accepted: dict[str, str] = {}  # message_uuid -> client_ref
    unexpected: list[str] = []
    lock = threading.Lock()

    def keep_sending(thread: int, target: TidingsServer) -> None:
        with httpx.Client(base_url=target.url, auth=credentials.basic, timeout=10) as client:
            for i in range(1000):
                client_ref = f"t{thread}-{i}"
                try:
                    response = client.post("/v1/messages", json=sms(receiver, client_ref))
                except httpx.HTTPError:
                    return  # the server is gone; this request may or may not have been stored
                with lock:
                    if response.status_code == 202:
                        accepted[response.json()["message_uuid"]] = client_ref
                    else:
                        unexpected.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=keep_sending, args=(n, server)) for n in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 15
    while len(accepted) < 60 and time.monotonic() < deadline and not unexpected:
        time.sleep(0.005)
    server.kill()
    for thread in threads:
        thread.join(15)
    assert not any(thread.is_alive() for thread in threads)
    assert unexpected == []
    assert len(accepted) >= 60

    rows = stored_messages(database_url)
    missing = accepted.keys() - rows.keys()
    assert not missing, f"{len(missing)} messages answered 202 are not in the database"
    assert all(rows[uuid]["client_ref"] == ref for uuid, ref in accepted.items())

    server.start()
    wait_for_statuses(receiver, accepted, ["submitted", "delivered"], timeout=25)
    time.sleep(0.5)

    assert_in_order(list(receiver.received), set(accepted))
    rows = stored_messages(database_url)
    assert {rows[uuid]["status"] for uuid in accepted} == {"delivered"}


def test_a_restarted_process_takes_back_its_dead_predecessors_jobs_at_once(
    make_server: MakeServer, receiver: WebhookReceiver, database_url: str
) -> None:
    """With leases of ten minutes, only knowing that the holder's process is gone (same host and
    role) lets the successor resume the deliveries before then."""
    server = make_server(TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS="0", TIDINGS_JOB_LEASE_SECONDS="600")
    credentials = server.create_account()
    server.start()
    # A receiver that answers slowly keeps the webhook jobs leased when the kill lands.
    receiver.delay_seconds = 5.0
    with httpx.Client(base_url=server.url, auth=credentials.basic, timeout=10) as client:
        responses = [client.post("/v1/messages", json=sms(receiver, f"lease-{i}")) for i in range(3)]
    uuids = {r.json()["message_uuid"] for r in responses}
    receiver.wait_for(1, timeout=10, accepted_only=False)  # a webhook is in flight: its job is leased
    server.kill()
    leased = leased_jobs(database_url)
    assert leased, "the kill should have left leased jobs"

    receiver.delay_seconds = 0.0
    started = time.monotonic()
    server.start()
    wait_for_statuses(receiver, uuids, ["submitted", "delivered"], timeout=30)
    assert time.monotonic() - started < 60  # far inside the ten-minute lease
    assert not leased_jobs(database_url) & leased
