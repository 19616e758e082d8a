"""Keeping the tables bounded: expired idempotency keys and JWT ids, and messages
(with their parts, events and webhook attempts) older than the retention.

Runs in every process that runs the worker, every `interval`; also on demand (`tidings db
purge`). Deletes go a chunk per transaction, each its own short transaction, so a large purge
never stalls the accepts. Several processes purging at once is harmless: they delete the same
rows, and each chunk is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store import idempotency as idempotency_store
from tidings.store import retention
from tidings.store.database import Database
from tidings.store.outage import database_unavailable

log = logging.getLogger("tidings.maintenance")

CHUNK = 1000
Chunk = Callable[[AsyncConnection], Awaitable[int]]


@dataclass(frozen=True)
class Purged:
    idempotency_keys: int = 0
    jwt_ids: int = 0
    messages: int = 0
    webhook_attempts: int = 0
    unroutable_inbound: int = 0

    def total(self) -> int:
        return sum(getattr(self, field.name) for field in fields(self))


class Maintenance:
    def __init__(self, database: Database, *, message_retention: timedelta | None) -> None:
        """`message_retention` None keeps messages forever."""
        self._database = database
        self._retention = message_retention

    async def purge(self, now: datetime | None = None) -> Purged:
        now = now or datetime.now(UTC)
        counts = {
            "idempotency_keys": await self._drain(
                lambda conn: idempotency_store.purge(
                    conn, older_than=now - idempotency_store.KEPT_FOR, limit=CHUNK
                )
            ),
            "jwt_ids": await self._drain(
                lambda conn: retention.delete_expired_replays(conn, now=now, limit=CHUNK)
            ),
        }
        if self._retention is not None:
            counts.update(await self._purge_history(now - self._retention))
        return Purged(**counts)

    async def _purge_history(self, cutoff: datetime) -> dict[str, int]:
        async with self._database.read() as conn:
            account_ids = await retention.account_ids(conn)
        messages = attempts = 0
        for account_id in account_ids:
            messages += await self._drain(
                partial(retention.delete_messages, account_id=account_id, older_than=cutoff, limit=CHUNK)
            )
            attempts += await self._drain(
                partial(
                    retention.delete_webhook_attempts, account_id=account_id, older_than=cutoff, limit=CHUNK
                )
            )
        unroutable = await self._drain(
            lambda conn: retention.delete_unroutable(conn, older_than=cutoff, limit=CHUNK)
        )
        return {"messages": messages, "webhook_attempts": attempts, "unroutable_inbound": unroutable}

    async def _drain(self, chunk: Chunk) -> int:
        """Runs `chunk` in transactions of its own until one deletes fewer than CHUNK rows."""
        total = 0
        while True:
            async with self._database.begin() as conn:
                deleted = await chunk(conn)
            total += deleted
            if deleted < CHUNK:
                return total
            await asyncio.sleep(0)  # let the accepts' commits in between

    async def purge_and_log(self) -> None:
        purged = await self.purge()
        if purged.total():
            log.info("purged %s", purged)


async def every(interval: timedelta, action: Callable[[], Awaitable[None]], what: str) -> None:
    """Runs `action` every `interval` until cancelled. A failed round is logged and tried next
    time: briefly while the database is out of reach, which the next round may find it back from,
    with its traceback otherwise."""
    while True:
        await asyncio.sleep(interval.total_seconds())
        try:
            await action()
        except Exception as error:
            if database_unavailable(error):
                log.warning(
                    "%s failed, the database out of reach; trying again in %s: %r", what, interval, error
                )
            else:
                log.exception("%s failed; trying again in %s", what, interval)
