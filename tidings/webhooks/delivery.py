"""Sending one signed webhook over HTTP, and saying how it went.

The client is aiohttp: under hundreds of concurrent posts a second, httpx's connection pool spends
several times the CPU per request (encode/httpx#3215, and measured in bench/sustained.py), which on
a delivery path means webhooks falling behind. Connections are kept alive and at most
`per_endpoint` are open to one host and port, so a slow receiver ties up its own connections,
not everyone's. The SSRF guard is the connector's resolver: every name is resolved once, its
addresses checked, and the connection made to those addresses only.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tidings.webhooks.ssrf import ForbiddenDestination, IPNetwork, checked_addresses, destination, verdict

USER_AGENT = "Tidings-Webhooks/1.0"
# What a receiver may answer with is read (and thrown away) only this far: the status is what counts.
MAX_ANSWER_BYTES = 64 * 1024
FORBIDDEN = "forbidden destination"  # how a refusal of the SSRF guard's begins


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class CheckedResolver(AbstractResolver):
    """Resolves a name once and gives the client only addresses the SSRF guard allows."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in await checked_addresses(host, port, self._allowed)
        ]

    async def close(self) -> None:
        return None


class WebhookSender:
    def __init__(
        self, *, timeout_seconds: float, allowed_networks: Sequence[IPNetwork], per_endpoint: int = 32
    ) -> None:
        self._allowed = tuple(allowed_networks)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._per_endpoint = per_endpoint
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the event loop that sends.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(self._allowed),
                limit=0,
                limit_per_host=self._per_endpoint,
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def send(self, url: str, body: bytes, *, token: str) -> AttemptResult:
        started = time.perf_counter()
        try:
            self._check_literal(url)
            async with self._client().post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                allow_redirects=False,  # a 3xx is a failed delivery; following it could pass the guard
            ) as response:
                await response.content.read(MAX_ANSWER_BYTES)
                status = response.status
        except ForbiddenDestination as error:
            return AttemptResult(None, _elapsed(started), f"{FORBIDDEN}: {error}")
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ForbiddenDestination):
                return AttemptResult(None, _elapsed(started), f"{FORBIDDEN}: {error.os_error}")
            return AttemptResult(None, _elapsed(started), f"{type(error).__name__}: {error}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            return AttemptResult(None, _elapsed(started), f"{type(error).__name__}: {error}")
        error_text = None if 200 <= status < 300 else f"HTTP {status}"
        return AttemptResult(status, _elapsed(started), error_text)

    def _check_literal(self, url: str) -> None:
        """The client connects to an address literal without asking the resolver: checked here,
        in the host as the client itself reads it from the URL. That is yarl's reading, which maps
        a host through IDNA: 127.0.0.1 in fullwidth digits, or with ideographic full stops, is the
        literal 127.0.0.1 to the client, though a name to urlsplit (and so to `destination`)."""
        destination(url)
        try:
            host = URL(url).raw_host or ""
        except ValueError as error:
            raise ForbiddenDestination(f"not a valid URL: {error}") from None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if ":" in host or host.replace(".", "").isdigit():
                # The client takes it for an address too (aiohttp.helpers.is_ip_address), one
                # spelled in a form (2130706433, 127.1, 0177.0.0.1) that is not checked here.
                raise ForbiddenDestination(f"{host} is not an address in canonical form") from None
            return
        if not verdict(address, self._allowed):
            raise ForbiddenDestination(f"{address} is not a public address")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
