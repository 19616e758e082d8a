"""Sending one signed webhook over HTTP, and saying how it went.

The HTTP client is Tidings' own (http_client.py: why, and how the SSRF guard holds in it).
Connections are kept alive, and how many are open to one receiver at once is bounded by the
endpoint slots (endpoint_slots.py), so a slow receiver ties up its own connections, not everyone's.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tidings.webhooks.http_client import ConnectError, ConnectionLost, ProtocolError, WebhookClient
from tidings.webhooks.ssrf import ForbiddenDestination, IPNetwork

USER_AGENT = "Tidings-Webhooks/1.0"
FORBIDDEN = "forbidden destination"  # how a refusal of the SSRF guard's begins
_FIXED_HEADERS = f"User-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\n".encode()


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_seconds: float,
        allowed_networks: Sequence[IPNetwork],
        idle_per_endpoint: int = 32,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`idle_per_endpoint`: the kept-alive connections kept open to one receiver between
        webhooks. The runtime keeps as many as the endpoint slots let be in flight to it at once."""
        self._timeout = timeout_seconds
        self._client = WebhookClient(tuple(allowed_networks), tls=tls, idle_per_origin=idle_per_endpoint)

    async def send(self, url: str, body: bytes, *, token: str) -> AttemptResult:
        started = time.perf_counter()
        headers = b"%sAuthorization: Bearer %s\r\n" % (_FIXED_HEADERS, token.encode("ascii"))
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._client.post(url, headers, body)
        except ForbiddenDestination as error:
            return AttemptResult(None, _elapsed(started), f"{FORBIDDEN}: {error}")
        except TimeoutError:
            return AttemptResult(
                None, _elapsed(started), f"TimeoutError: no answer within {self._timeout:g} s"
            )
        except (ConnectError, ConnectionLost, ProtocolError, ValueError) as error:
            return AttemptResult(None, _elapsed(started), f"{type(error).__name__}: {error}")
        error_text = None if 200 <= status < 300 else f"HTTP {status}"
        return AttemptResult(status, _elapsed(started), error_text)

    async def close(self) -> None:
        await self._client.close()


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
