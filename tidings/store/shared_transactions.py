"""Group commit for background work: many small units of database work share one transaction.

The worker settles jobs, records statuses and queues webhooks; connectors report receipts by the
hundred a second. Each of those is a few statements, and a transaction apiece would cost a commit
(a disk flush) and a write-lock turn each. Callers hand their unit of work here and wait; a
runner takes whatever is waiting (up to `max_batch`), runs the units one after another in one
transaction, commits, and only then answers each caller with its unit's result.

A unit must only touch the database through the connection it is given, so that it can be run
again: if any unit of a batch raises, the batch is rolled back and each of its units is run in a
transaction of its own, so one bad unit fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.database import Database

log = logging.getLogger("tidings.store")
T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]


@dataclass(eq=False)
class _Pending(Generic[T]):
    work: Work[T]
    done: asyncio.Future[T] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SharedTransactions:
    def __init__(self, database: Database, *, max_batch: int = 512) -> None:
        self._database = database
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending[Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0  # committed batches, for tests and metrics

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tidings-shared-transactions")

    async def stop(self) -> None:
        """Run everything already handed over, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def run(self, work: Work[T]) -> T:
        """Runs `work` in a transaction shared with other callers'; returns its result once that
        transaction has committed. A caller cancelled while it waits cancels its future, not its
        work: the runner runs and commits the unit all the same and leaves a cancelled future
        unsettled (_settle), as the group commit does with its writes."""
        if self._task is None:
            raise RuntimeError("shared transactions are not running")
        pending: _Pending[T] = _Pending(work)
        self._queue.put_nowait(pending)
        return await pending.done

    async def _run(self) -> None:
        while True:
            batch: list[_Pending[Any]] = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for pending in batch:
                    # Only if the runner itself is being cancelled can a unit still be waiting.
                    _settle(pending, error=RuntimeError("shared transactions stopped"))
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending[Any]]) -> None:
        try:
            results = await self._transaction(batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error=error)
                return
            log.warning(
                "a shared transaction of %d units failed (%r); running them one by one", len(batch), error
            )
            for pending in batch:
                await self._commit([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result=result)

    async def _transaction(self, batch: list[_Pending[Any]]) -> list[Any]:
        async with self._database.begin() as conn:
            results = [await pending.work(conn) for pending in batch]
        self.transactions += 1
        return results


def _settle(pending: _Pending[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(result)
    else:
        pending.done.set_exception(error)
