"""Group commit: the rows of concurrent requests are written in one transaction.

A commit costs a disk flush; one per request caps throughput at the disk's flush rate. Requests
hand their rows to the writer and wait; the writer takes whatever has arrived (up to a batch size,
waiting at most a moment for more), inserts it all with one executemany per table, commits, and
only then wakes each waiting request. Nobody is answered before their rows are durable.
If a batch fails, its writes are retried one by one so that one bad write cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.database import Database

log = logging.getLogger("tidings.store")


@dataclass
class PendingWrite:
    inserts: Sequence[tuple[Table, dict[str, Any]]]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitWriter:
    def __init__(self, database: Database, *, max_batch: int, window_seconds: float) -> None:
        self._database = database
        self._max_batch = max_batch
        self._window = window_seconds
        self._queue: asyncio.Queue[PendingWrite] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tidings-group-commit")

    async def stop(self) -> None:
        """Write everything already handed over, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def write(self, inserts: Sequence[tuple[Table, dict[str, Any]]]) -> None:
        """Returns once the rows are committed; raises what the database raised otherwise."""
        if self._task is None:
            raise RuntimeError("the writer is not running")
        pending = PendingWrite(inserts)
        self._queue.put_nowait(pending)
        await asyncio.shield(pending.done)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._window > 0 and self._queue.empty():
                await asyncio.sleep(self._window)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[PendingWrite]) -> None:
        try:
            async with self._database.begin() as conn:
                await _insert_all(conn, batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error)
                return
            log.warning("group commit of %d writes failed (%r); writing them one by one", len(batch), error)
            for pending in batch:
                await self._commit([pending])
            return
        for pending in batch:
            _settle(pending, None)


async def _insert_all(conn: AsyncConnection, batch: list[PendingWrite]) -> None:
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for pending in batch:
        for table, row in pending.inserts:
            by_table.setdefault(table, []).append(row)
    for table, rows in by_table.items():
        await conn.execute(insert(table), rows)


def _settle(pending: PendingWrite, error: BaseException | None) -> None:
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)
