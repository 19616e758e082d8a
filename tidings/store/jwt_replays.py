"""The database-backed JWT replay cache, for deployments without Redis.

A token's `jti` is recorded through the group commit, with the accepted messages: on SQLite a
transaction of its own would wait behind every other writer of the process (and a send with a
JWT took a quarter of a second under load). A jti seen before fails on the table's primary key,
in its own write only (the group commit retries a failed batch one write at a time).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError

from tidings.store.group_commit import GroupCommitWriter
from tidings.store.tables import jwt_replays


class DatabaseReplayCache:
    def __init__(self, writer: GroupCommitWriter) -> None:
        self._writer = writer

    async def first_use(self, jti: str, expires_at: datetime, issued_at: datetime | None = None) -> bool:
        try:
            await self._writer.write([(jwt_replays, {"jti": jti, "expires_at": expires_at})])
        except IntegrityError:
            return False
        return True

    async def close(self) -> None:
        return None
