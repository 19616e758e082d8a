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


class RedisReplayCache:
    """One `SET key NX PX ttl` per token. The checks of concurrent requests are sent together in
    one pipeline: a round trip and its client-side overhead per batch, not per request."""

    def __init__(self, url: str, *, prefix: str = "tidings:jti:", max_batch: int = 256) -> None:
        self._redis: Redis = Redis.from_url(url)
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
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, ttl_ms, _ in batch:
                        pipe.set(key, b"1", nx=True, px=ttl_ms)
                    results = await pipe.execute()
            except Exception as error:
                for _, _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (_, _, answer), stored in zip(batch, results, strict=True):
                if not answer.done():
                    answer.set_result(bool(stored))

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self._redis.aclose()
