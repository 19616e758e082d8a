"""The database-backed JWT replay cache, for deployments without Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from tidings.store.database import Database
from tidings.store.tables import jwt_replays


class DatabaseReplayCache:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        try:
            async with self._database.begin() as conn:
                await conn.execute(insert(jwt_replays).values(jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    async def purge_expired(self) -> None:
        async with self._database.begin() as conn:
            await conn.execute(delete(jwt_replays).where(jwt_replays.c.expires_at < datetime.now(UTC)))

    async def close(self) -> None:
        return None
