"""Remembering JWT ids (`jti`) until their tokens expire, so no token is accepted twice.

Shared by every Tidings process: in Redis when configured (one SET NX), else in the database
(one insert against a primary key, tidings/store/jwt_replays.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis


class ReplayCache(Protocol):
    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        """True the first time `jti` is seen before `expires_at`; False for a replay."""
        ...

    async def close(self) -> None: ...


class RedisReplayCache:
    def __init__(self, url: str, *, prefix: str = "tidings:jti:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        ttl_ms = max(1000, int((expires_at - datetime.now(UTC)).total_seconds() * 1000))
        stored = await self._redis.set(self._prefix + jti, b"1", nx=True, px=ttl_ms)
        return bool(stored)

    async def close(self) -> None:
        await self._redis.aclose()
