"""Sending one signed webhook over HTTP, and saying how it went."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tidings.webhooks.ssrf import ForbiddenDestination, IPNetwork, pin

USER_AGENT = "Tidings-Webhooks/1.0"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    def __init__(self, *, timeout_seconds: float, allowed_networks: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed_networks)
        # Redirects are not followed: a 3xx is a failed delivery, and following it could lead
        # past the SSRF guard.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def send(self, url: str, body: bytes, *, token: str) -> AttemptResult:
        started = time.perf_counter()
        try:
            target = await pin(url, self._allowed)
            response = await self._client.post(
                target.url,
                content=body,
                headers={
                    "Host": target.host_header,
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {token}",
                    "User-Agent": USER_AGENT,
                },
                extensions={"sni_hostname": target.server_name},
            )
            await response.aclose()
        except ForbiddenDestination as error:
            return AttemptResult(None, _elapsed(started), f"forbidden destination: {error}")
        except httpx.HTTPError as error:
            return AttemptResult(None, _elapsed(started), f"{type(error).__name__}: {error}")
        error_text = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return AttemptResult(response.status_code, _elapsed(started), error_text)

    async def close(self) -> None:
        await self._client.aclose()


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
