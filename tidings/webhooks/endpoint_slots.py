"""How many webhooks one process posts to one endpoint at once.

A receiver that hangs holds each request it takes until the timeout. With no bound, its webhooks
would take every one of the worker's slots and hold up every other receiver's. So each receiving
server gets `per_endpoint` requests in flight and as many again waiting for one of them; past
that, a webhook is postponed (costing no attempt) and gives its worker slot back. A fast receiver
never sees a postponement: its waiting webhooks go out as soon as the ones before them answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


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


class EndpointSlots:
    def __init__(self, per_endpoint: int) -> None:
        self._per_endpoint = per_endpoint
        self._endpoints: dict[str, _Endpoint] = {}

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Held while one webhook to `url`'s endpoint is in flight. Waits for a free slot when
        fewer than `per_endpoint` others already wait; raises EndpointBusy otherwise."""
        key = endpoint_of(url)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = _Endpoint(asyncio.Semaphore(self._per_endpoint))
        if endpoint.free.locked() and endpoint.waiting >= self._per_endpoint:
            raise EndpointBusy(key)
        endpoint.users += 1
        try:
            endpoint.waiting += 1
            try:
                await endpoint.free.acquire()
            finally:
                endpoint.waiting -= 1
            try:
                yield
            finally:
                endpoint.free.release()
        finally:
            endpoint.users -= 1
            if not endpoint.users:
                del self._endpoints[key]
