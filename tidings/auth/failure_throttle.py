"""Throttling failed Basic authentication per API key and per client address, before the KDF.

Every check that reaches argon2 costs tens of milliseconds of CPU, so a guessing client could
starve everyone else of it. Before a secret is hashed, one unit is taken from the buckets of its
API key and of the client's address; a correct secret gives it back, so only failures count.
Once either bucket is empty the request is refused with a 429 without hashing anything. A secret
already verified and cached in this process never reaches here, so a client that is working
keeps working while someone else guesses at its key.
"""

from __future__ import annotations

import math

from tidings.domain.errors import Throttled
from tidings.limits.gcra import Rate
from tidings.limits.limiter import Bucket, RateLimiter
from tidings.metrics import THROTTLED

_COUNTED = THROTTLED.labels("auth_failures")

LOCKED_OUT = "Too many failed authentication attempts; wait before trying again."


class FailureThrottle:
    def __init__(self, limiter: RateLimiter, *, per_key: Rate, per_address: Rate) -> None:
        self._limiter = limiter
        self._per_key = per_key
        self._per_address = per_address

    async def admit(self, api_key: str, address: str | None) -> list[Bucket]:
        """The buckets charged for this attempt, to `forgive` if it succeeds; raises Throttled
        when the key or the address has failed too often."""
        buckets: list[Bucket] = [(f"auth-key:{api_key}", self._per_key)]
        if address:
            buckets.append((f"auth-address:{address}", self._per_address))
        decision = await self._limiter.acquire(buckets)
        if not decision.allowed:
            _COUNTED.inc()
            raise Throttled(retry_after=max(1, math.ceil(decision.wait)), detail=LOCKED_OUT)
        return buckets

    async def forgive(self, buckets: list[Bucket]) -> None:
        await self._limiter.refund(buckets)
