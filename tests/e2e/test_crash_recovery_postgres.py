"""kill -9 of the API process or of the worker process of a PostgreSQL deployment, under a steady
stream of sends: once it is started again, every message answered 202 is delivered, each with its
webhooks in the order of its statuses. (test_crash_recovery.py does the same to the all-in-one.)
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.server import wait_for_statuses
from tests.e2e.steady_load import SteadySends
from tests.e2e.test_crash_recovery import assert_in_order
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

# The default lease (a minute) stays: a restarted worker must take its dead predecessor's jobs
# back at once, not when their leases run out.
SETTINGS = {"TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "0.3"}


@pytest.mark.parametrize("victim", ["api", "worker"])
def test_kill_9_under_load_loses_nothing(
    victim: str, make_private_server: MakeServer, receiver: WebhookReceiver
) -> None:
    api = make_private_server("api", **SETTINGS)
    worker = make_private_server("worker", **SETTINGS)
    credentials = api.create_account()
    api.start()
    worker.start()
    killed = api if victim == "api" else worker

    with SteadySends(lambda: api.url, receiver, lambda: credentials.basic, threads=4) as load:
        # Deliveries under way too, so that the kill lands amid the worker's jobs as well.
        load.wait_for(
            lambda: load.count(202) >= 40 and len(receiver.received) >= 10,
            timeout=15,
            what="sends and deliveries before the kill",
        )
        killed.kill()
        if victim == "api":
            load.wait_for(lambda: load.connection_errors > 0, timeout=10, what="the API process gone")
        else:
            sent = load.count(202)  # sends go on being accepted without a worker
            load.wait_for(lambda: load.count(202) >= sent + 20, timeout=10, what="sends without a worker")
        killed.start()
        sent = load.count(202)
        load.wait_for(lambda: load.count(202) >= sent + 20, timeout=15, what="sends after the restart")

    assert load.unexpected == []
    if victim == "worker":
        assert load.connection_errors == 0
    received = wait_for_statuses(receiver, load.accepted, ["submitted", "delivered"], timeout=25)
    assert_in_order(received, set(load.accepted))
