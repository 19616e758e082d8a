"""How many webhooks one process posts to one endpoint at once.

A receiver that hangs holds each request it takes until the timeout. With no bound, its webhooks
would take every one of the worker's slots and hold up every other receiver's. With one, its
webhooks past the bound wait their turn (postponed, costing no attempt) and the rest go on.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit


class EndpointBusy(Exception):
    """The endpoint already has as many of this process's webhooks in flight as it may."""


def endpoint_of(url: str) -> str:
    """Scheme, host and port: one receiving server, whatever the path. A URL too broken to read
    (a port out of range) is its own endpoint: the sender will refuse it and record why."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"{parts.scheme}://{parts.netloc.lower()}"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class EndpointSlots:
    def __init__(self, per_endpoint: int) -> None:
        self._per_endpoint = per_endpoint
        self._in_flight: Counter[str] = Counter()

    @contextlib.contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Held while one webhook to `url`'s endpoint is in flight; raises EndpointBusy when all
        of that endpoint's slots are held."""
        endpoint = endpoint_of(url)
        if self._in_flight[endpoint] >= self._per_endpoint:
            raise EndpointBusy(endpoint)
        self._in_flight[endpoint] += 1
        try:
            yield
        finally:
            self._in_flight[endpoint] -= 1
            if not self._in_flight[endpoint]:
                del self._in_flight[endpoint]
