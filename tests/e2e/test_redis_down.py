"""Redis killed under load, under an API process and a worker process configured with it.

JWT sends go on being accepted while Redis is down (their ids checked in the database), a token
that Redis may have seen before the outage is neither accepted nor refused but answered 503, a
token first used during the outage stays used once Redis is back (empty: it kept nothing), no
send is ever a 500, and every 202 is delivered. Redis and PostgreSQL are the test's own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import MakeServer
from tests.e2e.private_services import PrivateRedis
from tests.e2e.server import TidingsServer, wait_for_statuses
from tests.e2e.steady_load import BearerAuth, SteadySends, make_application, signed_by, sms, token_maker
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


def redis_keys(redis: PrivateRedis) -> int:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as sock:
        sock.sendall(b"DBSIZE\r\n")
        return int(sock.recv(64).strip().lstrip(b":"))


def send(api: TidingsServer, receiver: WebhookReceiver, token: BearerAuth, ref: str) -> httpx.Response:
    return httpx.post(f"{api.url}/v1/messages", json=sms(receiver, ref), auth=token, timeout=10)


def test_jwt_sends_survive_redis_going_down_and_replays_stay_refused(
    make_private_server: MakeServer, redis_server: PrivateRedis, receiver: WebhookReceiver
) -> None:
    settings = {"TIDINGS_REDIS_URL": redis_server.url, "TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "0.2"}
    api = make_private_server("api", **settings)
    worker = make_private_server("worker", **settings)
    credentials = api.create_account()
    api.start()
    worker.start()
    application_id, private_key = make_application(api, credentials)

    def token() -> BearerAuth:
        return token_maker(application_id, private_key)

    accepted_alone: set[str] = set()
    before, held = token(), token()  # `held` is made now and first used only after the outage
    first = send(api, receiver, before, "before")
    assert first.status_code == 202, first.text
    accepted_alone.add(first.json()["message_uuid"])

    with SteadySends(lambda: api.url, receiver, token, threads=3) as load:
        load.wait_for(lambda: load.count(202) >= 10, timeout=15, what="sends before the outage")
        redis_server.kill()
        sent = load.count(202)
        load.wait_for(lambda: load.count(202) >= sent + 30, timeout=15, what="sends while Redis is down")

        ready = httpx.get(f"{api.url}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["redis"] == "degraded"
        replayed = send(api, receiver, before, "before-again")
        assert replayed.status_code == 503, replayed.text  # Redis saw it: unknown to the database
        assert replayed.headers["content-type"] == "application/problem+json"
        assert send(api, receiver, held, "held").status_code == 503  # issued before the outage
        # `iat` is in whole seconds: a second ahead (within the clock-skew leeway), it is surely
        # later than the moment the API process found Redis gone.
        during = token_maker(application_id, private_key, ahead_seconds=1)
        response = send(api, receiver, during, "during")
        assert response.status_code == 202, response.text
        accepted_alone.add(response.json()["message_uuid"])
        assert send(api, receiver, during, "during-again").status_code == 401

        redis_server.start()  # the same port, nothing kept
        load.wait_for(lambda: redis_keys(redis_server) > 0, timeout=15, what="tokens recorded in Redis again")
        sent = load.count(202)
        load.wait_for(lambda: load.count(202) >= sent + 10, timeout=15, what="sends after Redis is back")

    # Redis is back, empty: `during` is known to the database only, and stays used.
    assert send(api, receiver, during, "during-after").status_code == 401
    response = send(api, receiver, held, "held-after")
    assert response.status_code == 202, response.text
    accepted_alone.add(response.json()["message_uuid"])
    assert send(api, receiver, held, "held-again").status_code == 401

    assert load.unexpected == []
    assert load.connection_errors == 0
    everything = set(load.accepted) | accepted_alone
    received = wait_for_statuses(receiver, everything, ["delivered"], timeout=30)
    assert all(signed_by(webhook, credentials) for webhook in received)
    assert api.running and worker.running
