"""The one rate limiter of a process, built by the runtime and used by every limit.

With Redis configured, buckets live there and every API and worker process shares them. Should
Redis stop answering, requests are not failed for it: limits fall back to this process's own
buckets (each process then allows the full rate by itself) and Redis is tried again a few
seconds later. Without Redis, this process's buckets are the only ones, which on the embedded
single-process default is exactly right.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tidings.limits.gcra import Decision, Rate
from tidings.limits.local import LocalRateLimiter

if TYPE_CHECKING:
    from tidings.limits.redis_backend import RedisRateLimiter

log = logging.getLogger("tidings.limits")

RETRY_REDIS_AFTER_SECONDS = 5.0
# A check that waits on a dead Redis holds up a request: fail over well before a client gives up,
# but not so eagerly that a busy moment (a burst opening connections) counts as an outage.
REDIS_TIMEOUT_SECONDS = 1.0

Bucket = tuple[str, Rate]


class SharedLimitsUnavailable(Exception):
    """Redis did not answer a check (redis_backend.py raises it in place of the client's errors)."""


class RateLimiter:
    def __init__(
        self,
        shared: RedisRateLimiter | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = LocalRateLimiter(clock)
        self._clock = clock
        self._shared_down_until = 0.0

    @classmethod
    def from_url(cls, redis_url: str | None, *, prefix: str = "tidings:rate:") -> RateLimiter:
        if not redis_url:
            return cls(None)
        # Imported here: redis-py takes ~8 MB that a process without Redis should not pay.
        from tidings.limits.redis_backend import RedisRateLimiter

        return cls(RedisRateLimiter.from_url(redis_url, prefix=prefix, timeout=REDIS_TIMEOUT_SECONDS))

    @property
    def is_shared(self) -> bool:
        """Whether checks go to Redis now (False without Redis, or while it is away)."""
        return self._shared is not None and self._clock() >= self._shared_down_until

    async def acquire(self, buckets: Sequence[Bucket], max_wait: float = 0.0) -> Decision:
        """Takes one unit from each bucket, or from none. Allowed with a wait: a slot that far
        ahead is the caller's. Refused: nothing was taken."""
        if not buckets:
            return Decision(allowed=True)
        if self._shared is not None and self.is_shared:
            try:
                return await self._shared.acquire(buckets, max_wait)
            except SharedLimitsUnavailable as error:
                self._shared_failed(error)
        return self._local.acquire_now(buckets, max_wait)

    async def check(self, buckets: Sequence[Bucket]) -> Decision:
        """What acquire would decide now, taking nothing."""
        if self._shared is not None and self.is_shared:
            try:
                return await self._shared.check(buckets)
            except SharedLimitsUnavailable as error:
                self._shared_failed(error)
        return self._local.check_now(buckets)

    async def refund(self, buckets: Sequence[Bucket]) -> None:
        """Gives back the unit an earlier acquire took (it turned out not to count)."""
        if self._shared is not None and self.is_shared:
            try:
                await self._shared.refund(buckets)
                return
            except SharedLimitsUnavailable as error:
                self._shared_failed(error)
        self._local.refund_now(buckets)

    def _shared_failed(self, error: Exception) -> None:
        was_up = self.is_shared
        self._shared_down_until = self._clock() + RETRY_REDIS_AFTER_SECONDS
        if was_up:  # once per outage, not once per request in flight when it began
            log.warning(
                "rate limits fall back to this process for %.0fs: Redis did not answer (%s)",
                RETRY_REDIS_AFTER_SECONDS,
                error,
            )

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()
