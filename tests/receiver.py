"""A real HTTP server on 127.0.0.1 that records the webhooks it receives."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 200

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


class _Server(http.server.ThreadingHTTPServer):
    """As a real receiver listens: socketserver's backlog of 5 pending connections overflowed
    when a worker opened its 32 connections at once (this handler closes each after one answer),
    and the kernel dropped the rest's SYNs, to be sent again a second later. A webhook then took
    1-2 s, and one that timed out meanwhile was still read from the backlog later, after the
    attempt that replaced it: a `submitted` recorded after its message's `delivered`."""

    request_queue_size = 128


class WebhookReceiver:
    """Answers 200 by default; `responses` is a queue of answers to give first: a status code, or a
    status code and extra headers (e.g. a redirect's Location). `received` holds the requests it
    accepted (2xx), `attempts` every request whatever it answered. With `delay_seconds`, each
    answer goes out that much later (the request is recorded on arrival)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts: list[Received] = []
        self.responses: list[int | tuple[int, dict[str, str]]] = []
        self.delay_seconds = 0.0
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests it was answering at once
        self._lock = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    answer = receiver.responses.pop(0) if receiver.responses else 200
                    status, extra = answer if isinstance(answer, tuple) else (answer, {})
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    request = Received(self.path, headers, body, status)
                    receiver.attempts.append(request)
                    if 200 <= status < 300:
                        receiver.received.append(request)
                    receiver._lock.notify_all()
                    delay = receiver.delay_seconds
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                if delay:
                    time.sleep(delay)
                with receiver._lock:
                    receiver.in_flight -= 1
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *_args: Any) -> None:
                return

        self._server = _Server(("127.0.0.1", 0), Handler)
        # serve_forever looks for a shutdown request between waits of `poll_interval` (0.5 s by
        # default), so every receiver's teardown took up to half a second; hundreds of tests
        # start one.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_matching(
        self, match: Callable[[Received], bool], count: int, timeout: float = 15.0
    ) -> list[Received]:
        """Blocks until `count` accepted webhooks satisfy `match`; returns those, in arrival order."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(found := [r for r in self.received if match(r)]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} matching webhooks, got {len(found)}: {self.received}"
                    )
                self._lock.wait(remaining)
            return found

    def wait_for(self, count: int, timeout: float = 15.0, *, accepted_only: bool = True) -> list[Received]:
        """Blocks until `count` webhooks were accepted (or, with accepted_only False, until `count`
        requests came in at all); returns them in arrival order."""
        deadline = time.monotonic() + timeout
        seen = self.received if accepted_only else self.attempts
        with self._lock:
            while len(seen) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} webhooks, got {len(seen)}: {seen}")
                self._lock.wait(remaining)
            return list(seen)
