"""PostgreSQL restarted under load, under an API process and a worker process of their own.

While the database is down every send is answered, promptly, with a 503 problem; once it is back
the same processes accept again, and every message ever answered 202 is delivered, with its
signed webhook. Nothing is restarted but PostgreSQL (a cluster of the test's own). The job lease
is the default (a minute), longer than the wait for every delivery: a worker batch whose COMMIT
answer the restart lost must be settled by asking the database once it is back, not by its lease.
"""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.private_services import PrivatePostgres
from tests.e2e.server import TidingsServer, wait_for_statuses
from tests.e2e.steady_load import SteadySends, make_application, signed_by, token_maker
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

SETTINGS = {
    "TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "0.2",
    # Credentials are looked up in the database again during the outage, not only served from
    # the cache (a lookup that fails must be a 503 too).
    "TIDINGS_AUTH_CACHE_SECONDS": "0.5",
}


def database_ready(server: TidingsServer) -> bool:
    checks = httpx.get(f"{server.url}/ready", timeout=5).json()["checks"]
    return bool(checks["database"] == "ok")


# fast: PostgreSQL ends every session and stops cleanly; immediate: it crashes, and recovers
# from its log when started again.
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_sends_get_503_while_postgres_restarts_and_every_202_is_delivered(
    mode: str, make_private_server: MakeServer, private_postgres: PrivatePostgres, receiver: WebhookReceiver
) -> None:
    api = make_private_server("api", **SETTINGS)
    worker = make_private_server("worker", **SETTINGS)
    credentials = api.create_account()
    api.start()
    worker.start()
    application_id, private_key = make_application(api, credentials)
    # Basic and JWT in turn: the JWT's replay check (the database's, here) must recover too.
    turns = itertools.cycle([False, True])

    def auth() -> httpx.Auth | tuple[str, str]:
        return token_maker(application_id, private_key) if next(turns) else credentials.basic

    with SteadySends(lambda: api.url, receiver, auth, threads=4, timeout=10) as load:
        load.wait_for(lambda: load.count(202) >= 20, timeout=15, what="sends before the outage")
        private_postgres.stop(mode)
        try:
            # Down long enough for the worker to notice too (its readiness probe asks the database).
            load.wait_for(
                lambda: load.count(503) >= 10 and not database_ready(worker),
                timeout=15,
                what="503s, and the worker unready, while PostgreSQL is down",
            )
        finally:
            private_postgres.start()  # a failure here must not leave the next test without its cluster
        before = load.count(202)
        load.wait_for(lambda: load.count(202) >= before + 40, timeout=20, what="sends after the restart")

    assert load.unexpected == []
    assert load.connection_errors == 0
    assert "unhandled error" not in api.log()
    received = wait_for_statuses(receiver, load.accepted, ["delivered"], timeout=30)
    delivered = [
        w for w in received if w.json()["status"] == "delivered" and w.json()["message_uuid"] in load.accepted
    ]
    assert all(signed_by(webhook, credentials) for webhook in delivered)
    # The same processes, never restarted, delivered what was accepted after the outage too.
    assert api.running and worker.running
