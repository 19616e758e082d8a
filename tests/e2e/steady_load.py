"""A steady stream of sends from a few threads, recording every answer, for the fault tests.

Each answer is sorted: a 202 (its message must be delivered later), a 503 problem (the documented
answer while a dependency is down), a connection error (only expected where the test kills the
API process) and anything else, which is always a failure: a 500, another status, a 503 that is
not an RFC 7807 problem, or a request that took longer than the client's timeout (a hang).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator

import httpx
import jwt

from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import Received, WebhookReceiver
from tests.signing_keys import signing_key

PROBLEM_JSON = "application/problem+json"
Auth = Callable[[], httpx.Auth | tuple[str, str]]


def sms(receiver: WebhookReceiver, client_ref: str) -> dict[str, str]:
    return {
        "channel": "sms",
        "message_type": "text",
        "to": "447700900000",
        "from": "Acme",
        "text": f"message {client_ref}",
        "client_ref": client_ref,
        "webhook_url": f"{receiver.url}/status",
    }


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def make_application(api: TidingsServer, credentials: Credentials) -> tuple[str, str]:
    """A new application's id and the private key Tidings made for it."""
    response = httpx.post(
        f"{api.url}/v2/applications", json={"name": "faults"}, auth=credentials.basic, timeout=10
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["keys"]["private_key"]


def token_maker(application_id: str, private_key: str, *, ahead_seconds: int = 0) -> BearerAuth:
    """A new JWT for the application, issued now (or `ahead_seconds` later, as a client whose
    clock runs ahead would)."""
    now = int(time.time()) + ahead_seconds
    claims = {"application_id": application_id, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    return BearerAuth(jwt.encode(claims, signing_key(private_key), algorithm="RS256"))


class SteadySends:
    def __init__(
        self,
        url: Callable[[], str],
        receiver: WebhookReceiver,
        auth: Auth,
        *,
        threads: int = 4,
        timeout: float = 10.0,
        pause: float = 0.02,
    ) -> None:
        """`url` is asked before every request (a restarted API process listens on a new port);
        `auth` makes each request's credentials (a fresh JWT each time, or Basic). Each thread
        waits `pause` between sends: a steady stream, not a flood that leaves the worker a
        backlog of thousands to deliver after the test's event."""
        self._url = url
        self._receiver = receiver
        self._auth = auth
        self._timeout = timeout
        self._pause = pause
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)]
        self.accepted: dict[str, str] = {}  # message_uuid -> client_ref
        self.answers: Counter[int] = Counter()
        self.connection_errors = 0
        self.unexpected: list[str] = []

    def __enter__(self) -> SteadySends:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a sender is stuck"

    def count(self, status: int) -> int:
        with self._lock:
            return self.answers[status]

    def wait_for(self, done: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Until `done()`, failing early if an unexpected answer came meanwhile."""
        deadline = time.monotonic() + timeout
        while not done():
            assert not self.unexpected, self.unexpected[:5]
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; answers {self.answers}")
            time.sleep(0.02)

    def _send(self, thread: int) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            i = 0
            while not self._stopping.wait(self._pause):
                i += 1
                client_ref = f"t{thread}-{i}"
                try:
                    response = client.post(
                        f"{self._url()}/v1/messages", json=sms(self._receiver, client_ref), auth=self._auth()
                    )
                except httpx.TimeoutException as error:
                    self._record_unexpected(f"no answer within {self._timeout}s: {error!r}")
                    continue
                except httpx.TransportError:
                    with self._lock:
                        self.connection_errors += 1
                    continue
                with self._lock:
                    self.answers[response.status_code] += 1
                    if response.status_code == 202:
                        self.accepted[response.json()["message_uuid"]] = client_ref
                        continue
                if not _is_unavailable_problem(response):
                    self._record_unexpected(f"{response.status_code} {response.text[:300]}")

    def _record_unexpected(self, what: str) -> None:
        with self._lock:
            self.unexpected.append(what)


def _is_unavailable_problem(response: httpx.Response) -> bool:
    if response.status_code != 503 or response.headers.get("content-type") != PROBLEM_JSON:
        return False
    body: dict[str, object] = response.json()
    return body.get("title") == "Service Unavailable" and {"type", "detail", "instance"} <= body.keys()


def signed_by(webhook: Received, credentials: Credentials) -> bool:
    """The webhook's bearer token is the account's HS256 signature over this exact body."""
    try:
        claims = jwt.decode(webhook.bearer, credentials.signature_secret, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return False
    return bool(claims.get("payload_hash") == hashlib.sha256(webhook.body).hexdigest())
