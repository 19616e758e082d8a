"""Remembering JWT ids (`jti`) until their tokens expire, so no token is accepted twice.

Shared by every Tidings process: in Redis when configured (one SET NX), else in the database
(one insert against a primary key, tidings/store/jwt_replays.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis


class ReplayCache(Protocol):
    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        """True the first time `jti` is seen before `expires_at`; False for a replay."""
        ...

    async def close(self) -> None: ...


# `SET key 1 NX PX ttl` for each key, answering 1 where the key was new. One script call checks a
# whole batch: a single command for the client to encode and a single reply to parse, which a
# pipeline of SETs (a command and a reply per token) cost several times over.
_FIRST_USES = """
local fresh = {}
for i, key in ipairs(KEYS) do
  fresh[i] = redis.call('SET', key, '1', 'NX', 'PX', ARGV[i]) and 1 or 0
end
return fresh
"""


class RedisReplayCache:
    """One `SET key NX PX ttl` per token. The checks of concurrent requests are sent together in
    one script call: a round trip and its client-side overhead per batch, not per request."""

    def __init__(self, url: str, *, prefix: str = "tidings:jti:", max_batch: int = 256) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._first_uses = self._redis.register_script(_FIRST_USES)
        self._prefix = prefix
        self._max_batch = max_batch
        self._pending: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        ttl_ms = max(1000, int((expires_at - datetime.now(UTC)).total_seconds() * 1000))
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((self._prefix + jti, ttl_ms, answer))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await asyncio.shield(answer)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                results = await self._first_uses(
                    keys=[key for key, _, _ in batch], args=[ttl_ms for _, ttl_ms, _ in batch]
                )
            except Exception as error:
                for _, _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (_, _, answer), stored in zip(batch, results, strict=True):
                if not answer.done():
                    answer.set_result(bool(stored))

    async def ping(self) -> bool:
        """Whether Redis answers (for readiness)."""
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self._redis.aclose()
