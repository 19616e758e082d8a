"""How many webhooks one process posts to one endpoint at once.

A receiver that hangs holds each request it takes until the timeout. With no bound, its webhooks
would take every one of the worker's slots and hold up every other receiver's. So each receiving
server gets `per_endpoint` requests in flight and as many again waiting for one of them; past
that, a webhook is postponed (costing no attempt) and gives its worker slot back.

A fast receiver must not see postponements either when a burst fills the queue: the worker claims
up to its concurrency (256) at once, and most of a burst's webhooks go to one receiver, so three in
four were postponed by a second and claimed again (9,431 postponements draining 6,000 messages,
12,002 webhooks; the drain ran at 441-474 messages/s, and at 546-606 without the bound). So past
its waiters, a webhook may still wait while its endpoint answers quickly: while the endpoint's
recent answers say the wait is short (their mean time, times the queue ahead, over `per_endpoint`,
is within `quick_wait` seconds) and its last answer came within `quick_wait`; for at most
`quick_wait`; and with at most `max_waiting` waiting in all. A quick receiver that starts hanging
stops answering: within `quick_wait` no more webhooks wait past the first `per_endpoint`, and
those that did are postponed after `quick_wait` at most, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

QUICK_WAIT_SECONDS = 0.25
# The weight of the latest answer in an endpoint's mean answer time.
_LATEST_WEIGHT = 0.2
# Endpoints whose answer times are kept (the most recently answered); others start unknown.
_ANSWER_TIMES_KEPT = 1024


class EndpointBusy(Exception):
    """The endpoint already has as many of this process's webhooks in flight and waiting as it may."""


def endpoint_of(url: str) -> str:
    """Scheme, host and port: one receiving server, whatever the path. A URL too broken to read
    (a port out of range) is its own endpoint: the sender will refuse it and record why."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{parts.scheme}://{parts.netloc.lower()}"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass
class _Endpoint:
    free: asyncio.Semaphore
    waiting: int = 0
    users: int = field(default=0)  # in flight or waiting: the entry goes when none are left
    last_answer: float = field(default_factory=time.monotonic)  # or when the entry was made


class EndpointSlots:
    def __init__(
        self, per_endpoint: int, *, max_waiting: int | None = None, quick_wait: float = QUICK_WAIT_SECONDS
    ) -> None:
        """`max_waiting` (at least `per_endpoint`; by default `per_endpoint`, when none wait past
        the first `per_endpoint`) bounds the waiters of one endpoint."""
        self._per_endpoint = per_endpoint
        self._max_waiting = max(per_endpoint, max_waiting or per_endpoint)
        self._quick_wait = quick_wait
        self._endpoints: dict[str, _Endpoint] = {}
        self._answer_times: dict[str, float] = {}  # mean seconds a slot was held, per endpoint

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Held while one webhook to `url`'s endpoint is in flight. Waits for a free slot when
        fewer than `per_endpoint` others already wait, or for at most `quick_wait` when the
        endpoint answers quickly enough; raises EndpointBusy otherwise."""
        key = endpoint_of(url)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = _Endpoint(asyncio.Semaphore(self._per_endpoint))
        wait_limit = None
        if endpoint.free.locked() and endpoint.waiting >= self._per_endpoint:
            if not self._answers_quickly(key, endpoint):
                raise EndpointBusy(key)
            wait_limit = self._quick_wait
        endpoint.users += 1
        try:
            endpoint.waiting += 1
            try:
                async with asyncio.timeout(wait_limit):
                    await endpoint.free.acquire()
            except TimeoutError:
                raise EndpointBusy(key) from None
            finally:
                endpoint.waiting -= 1
            started = time.monotonic()
            try:
                yield
            finally:
                endpoint.free.release()
                endpoint.last_answer = time.monotonic()
                self._answered(key, endpoint.last_answer - started)
        finally:
            endpoint.users -= 1
            if not endpoint.users:
                del self._endpoints[key]

    def _answers_quickly(self, key: str, endpoint: _Endpoint) -> bool:
        answer_time = self._answer_times.get(key)
        if answer_time is None or endpoint.waiting >= self._max_waiting:
            return False
        if time.monotonic() - endpoint.last_answer > self._quick_wait:
            return False  # nothing has come back for a while: it may have stopped answering
        return answer_time * (endpoint.waiting + 1) / self._per_endpoint <= self._quick_wait

    def _answered(self, key: str, seconds: float) -> None:
        previous = self._answer_times.pop(key, None)  # re-inserted last: the most recent
        self._answer_times[key] = (
            seconds if previous is None else previous + _LATEST_WEIGHT * (seconds - previous)
        )
        if len(self._answer_times) > _ANSWER_TIMES_KEPT:
            del self._answer_times[next(iter(self._answer_times))]
