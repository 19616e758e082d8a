"""Throttling failed authentication per credential and per client address, before the check runs.

Basic: every check that reaches argon2 costs tens of milliseconds of CPU, so a guessing client
could starve everyone else of it. Before a secret is hashed, one unit is taken from the buckets of
its API key and of the client's address; a correct secret gives it back, as does a check that
could not be made (the database out of reach), so only failures count.
Once either bucket is empty the request is refused with a 429 without hashing anything. A secret
already verified and cached in this process never reaches here, so a client that is working
keeps working while someone else guesses at its key.

Bearer JWTs (bad signature, unknown application, expired, replayed) count against the client's
address, the same bucket as its Basic failures, and against the application the token names.
Every token is new (no verified one can be cached), so taking a unit and giving it back would
cost every good token two limiter calls, each a Redis round trip where the replay check costs
one per batch: instead a unit is taken once a token has failed, and the buckets are looked at
before the RSA verification only where this process has counted a failure within the time they
take to refill. A good client costs nothing; a failing one is looked up from its first failure
in each process. Tokens failing at the same moment can all pass the look, so a burst may verify
up to its own concurrency (and one per process) beyond the limit; from then on it is refused
unverified. An RSA verification costs tens of microseconds, not argon2's tens of milliseconds,
so that overshoot is cheap. An application one of whose tokens this process verified lately
skips its own bucket (its failures still count against their addresses), so forgeries naming it
do not lock it out.
"""

from __future__ import annotations

import math
import time

from tidings.domain.errors import Throttled
from tidings.limits.gcra import Rate
from tidings.limits.limiter import Bucket, RateLimiter
from tidings.metrics import THROTTLED

_COUNTED = THROTTLED.labels("auth_failures")

LOCKED_OUT = "Too many failed authentication attempts; wait before trying again."
SWEEP_EVERY = 1024  # counted token failures between sweeps of the ones whose buckets refilled


class FailureThrottle:
    def __init__(self, limiter: RateLimiter, *, per_key: Rate, per_address: Rate) -> None:
        self._limiter = limiter
        self._per_key = per_key
        self._per_address = per_address
        # bucket -> until when a token failure counted here makes admit_token look at it
        self._failing: dict[str, float] = {}
        self._counted = 0

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

    async def admit_token(self, application_id: str | None, address: str | None) -> list[Bucket]:
        """The buckets a failure of this bearer token is to be `count`ed against; raises Throttled,
        taking nothing, when the application or the address has failed too often."""
        buckets: list[Bucket] = []
        if application_id:
            buckets.append((f"auth-application:{application_id}", self._per_key))
        if address:
            buckets.append((f"auth-address:{address}", self._per_address))
        now = time.monotonic()
        if not any(self._failing.get(key, 0.0) > now for key, _ in buckets):
            return buckets  # no failure counted here lately: nothing to look at
        decision = await self._limiter.check(buckets)
        if not decision.allowed:
            _COUNTED.inc()
            raise Throttled(retry_after=max(1, math.ceil(decision.wait)), detail=LOCKED_OUT)
        return buckets

    async def count(self, buckets: list[Bucket]) -> None:
        """Counts a failure admitted by admit_token. Refused means another failure filled the bucket
        first: this one is past the limit anyway."""
        now = time.monotonic()
        self._counted += 1
        if not self._counted % SWEEP_EVERY:
            for key in [key for key, until in self._failing.items() if until <= now]:
                del self._failing[key]
        for key, rate in buckets:
            self._failing[key] = now + rate.interval * rate.burst  # until an empty bucket is full
        await self._limiter.acquire(buckets)
