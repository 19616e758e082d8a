"""The database-backed JWT replay cache, for deployments without Redis.

A token's `jti` is recorded through the group commit, with the accepted messages: on SQLite a
transaction of its own would wait behind every other writer of the process (and a send with a
JWT took a quarter of a second under load). A jti seen before fails on the table's primary key,
in its own write only (the group commit retries a failed batch one write at a time).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.tables import jwt_replays


class DatabaseReplayCache:
    def __init__(self, database: Database, writer: GroupCommitWriter) -> None:
        self._database = database
        self._writer = writer

    async def first_use(self, jti: str, expires_at: datetime) -> bool:
        try:
            await self._writer.write([(jwt_replays, {"jti": jti, "expires_at": expires_at})])
        except IntegrityError:
            return False
        return True

    async def purge_expired(self) -> None:
        async with self._database.begin() as conn:
            await conn.execute(delete(jwt_replays).where(jwt_replays.c.expires_at < datetime.now(UTC)))

    async def close(self) -> None:
        return None
