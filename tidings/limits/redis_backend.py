"""Rate limits in Redis, shared by every Tidings process: one script call per check.

The script reads the clock of Redis itself (`TIME`), so processes on machines whose clocks
disagree still share one bucket fairly. Times are whole microseconds. Every bucket key carries a
TTL of the time until it has refilled, after which it is worth nothing and Redis drops it.

The script takes from several buckets at once, and Redis Cluster runs a script only when all of
its keys hash to one slot. The buckets one call combines have no owner in common (a client
address's bucket goes with whichever API key or application it tried), so no tag drawn from a
call's own keys would name a bucket the same way in every call. Every key therefore carries the
same hash tag, the prefix in braces (`{tidings:rate:}send-account:…`): any combination of
buckets is one slot, and on a Cluster the rate limits live on one node, where each check is one
cheap script call either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tidings.limits.gcra import Decision, Rate
from tidings.limits.limiter import SharedLimitsUnavailable

MICROS = 1_000_000

# KEYS: the buckets, taken all or none. ARGV[1]: the longest wait accepted (µs); then, per key,
# its interval and its burst tolerance (µs). Answers {allowed, wait in µs}.
_DECIDE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local max_wait = tonumber(ARGV[1])
local tats, worst = {}, 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local delay = tat - now - tonumber(ARGV[2 * i + 1])
  if delay > worst then worst = delay end
end
if worst > max_wait then
  return {0, worst - max_wait}
end
"""
_ACQUIRE = (
    _DECIDE
    + """
for i, key in ipairs(KEYS) do
  local tat = tats[i] + tonumber(ARGV[2 * i])
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return {1, worst}
"""
)
# The same decision, taking nothing.
_CHECK = _DECIDE + "return {1, worst}\n"

# KEYS: buckets to give one unit back to; ARGV[i]: each one's interval (µs).
_REFUND = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat then
    tat = math.max(now, tat - tonumber(ARGV[i]))
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
end
return 0
"""


def _micros(seconds: float) -> int:
    return round(seconds * MICROS)


class RedisRateLimiter:
    def __init__(self, redis: Redis, *, prefix: str = "tidings:rate:") -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix becomes the keys' hash tag and may not hold braces")
        self._redis = redis
        self._prefix = "{" + prefix + "}"  # Redis Cluster: one slot for every key (see above)
        self._acquire = redis.register_script(_ACQUIRE)
        self._check = redis.register_script(_CHECK)
        self._refund = redis.register_script(_REFUND)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float) -> RedisRateLimiter:
        return cls(Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout), prefix=prefix)

    async def acquire(self, buckets: Sequence[tuple[str, Rate]], max_wait: float = 0.0) -> Decision:
        return await self._decide(self._acquire, buckets, max_wait)

    async def check(self, buckets: Sequence[tuple[str, Rate]]) -> Decision:
        return await self._decide(self._check, buckets, 0.0)

    async def _decide(
        self, script: AsyncScript, buckets: Sequence[tuple[str, Rate]], max_wait: float
    ) -> Decision:
        args: list[int] = [_micros(max_wait)]
        for _, rate in buckets:
            args += [_micros(rate.interval), _micros(rate.tolerance)]
        try:
            allowed, wait = await script(keys=[self._prefix + key for key, _ in buckets], args=args)
        except (RedisError, OSError) as error:
            raise SharedLimitsUnavailable(type(error).__name__) from error
        return Decision(allowed=bool(allowed), wait=max(0, int(wait)) / MICROS)

    async def refund(self, buckets: Sequence[tuple[str, Rate]]) -> None:
        try:
            await self._refund(
                keys=[self._prefix + key for key, _ in buckets],
                args=[_micros(rate.interval) for _, rate in buckets],
            )
        except (RedisError, OSError) as error:
            raise SharedLimitsUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        await self._redis.aclose()
