"""The replay cache of a deployment with Redis, which keeps refusing replays while Redis is down.

Redis answers while it can. When it cannot (refused, reset, timed out), this process notes when
it found Redis gone and checks tokens against the database's cache instead, so JWT requests go on
being served. Two holes would open in a naive switch, and each is closed here:

- A token presented before the outage is in Redis, not in the database: replayed during the
  outage, the database would take it for new. So while Redis is out of reach a token issued
  (`iat`) before this process found Redis gone is neither accepted nor refused, but answered 503:
  it cannot be checked now, and the same token is checked again once Redis is back. Tokens made
  during the outage, which is what the SDKs send (a new token per request), go through.
- A token first presented during the outage is in the database, not in Redis: replayed after
  Redis is back, Redis would take it for new. So after an outage, tokens issued before it ended
  (plus the clock-skew leeway) must be new to Redis and to the database both.

The rest is left to the deployment: a Redis restarted without persistence forgets every token it
held, outage or not (run it with `appendonly yes` where that matters), and a token whose issuer's
clock runs ahead of ours by up to the leeway and that was presented just before the outage can
pass the first check.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from tidings.auth.replay import RedisReplayCache, ReplayCache
from tidings.domain.errors import ServiceUnavailable

log = logging.getLogger("tidings.auth")

# While Redis is out of reach it is tried again at most this often; between tries every check
# goes to the database at once, rather than each request waiting for Redis to fail again.
REDIS_RETRY_SECONDS = 1.0


class ReplayUnknown(ServiceUnavailable):
    default_detail = (
        "This token was issued before the replay cache became unreachable and cannot be checked "
        "now; try again shortly, or with a new token."
    )


class FallbackReplayCache:
    def __init__(self, redis: RedisReplayCache, database: ReplayCache, *, leeway_seconds: float) -> None:
        self._redis = redis
        self._database = database
        self._leeway = leeway_seconds
        self._lost_at: float | None = None  # wall time this process found Redis out of reach
        self._try_redis_at = 0.0  # monotonic
        # Tokens issued before this (wall time) may have been recorded in the database alone;
        # before any outage, none (a token of unknown age is older than any other).
        self._database_only_before = float("-inf")

    async def first_use(self, jti: str, expires_at: datetime, issued_at: datetime | None = None) -> bool:
        issued = issued_at.timestamp() if issued_at is not None else float("-inf")
        if self._lost_at is None or time.monotonic() >= self._try_redis_at:
            try:
                fresh = await self._redis.first_use(jti, expires_at)
            except Exception as error:  # redis-py's errors, OSError, timeouts: Redis is not there
                self._redis_lost(error)
            else:
                self._redis_answered()
                if fresh and issued < self._database_only_before:
                    return await self._database.first_use(jti, expires_at)
                return fresh
        assert self._lost_at is not None
        if issued < self._lost_at:
            raise ReplayUnknown()
        return await self._database.first_use(jti, expires_at)

    def _redis_lost(self, error: BaseException) -> None:
        if self._lost_at is None:
            self._lost_at = time.time()
            log.warning("Redis cannot be reached (%r); checking JWT ids in the database meanwhile", error)
        self._try_redis_at = time.monotonic() + REDIS_RETRY_SECONDS

    def _redis_answered(self) -> None:
        if self._lost_at is not None:
            self._lost_at = None
            self._database_only_before = time.time() + self._leeway
            log.warning("Redis answers again; JWT ids are checked there again")

    async def ping(self) -> bool:
        return await self._redis.ping()

    async def close(self) -> None:
        await self._redis.close()
        await self._database.close()
