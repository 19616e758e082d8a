"""Group commit: the rows of concurrent requests are written in one transaction.

A commit costs a disk flush; one per request caps throughput at the disk's flush rate. Requests
hand their rows to the writer and wait; the writer takes whatever has arrived (up to a batch size,
waiting at most a moment for more), inserts it all with one executemany per table, commits, and
only then wakes each waiting request. Nobody is answered before their rows are durable.
On PostgreSQL the next batches gather while earlier ones commit, each on a connection of its own
(up to POSTGRES_COMMITS_IN_FLIGHT): a batch runs its statements one round trip at a time, so
batches in flight together keep the server busy while each waits on its answers and its flush
(SQLite has one writer).
If a batch fails, its writes are retried one by one so that one bad write cannot fail the others
(unless the database is out of reach: then they all fail at once, after one more try on a new
connection should the kept one have died while the server restarted; a batch whose COMMIT answer
was lost is tried again only once the runner has found out that it did not commit, see
batch_runners.py, and one it could not find out about fails in doubt, which `resolve` settles
later);
if an account cannot pay for all of its writes in a batch, the others commit together and that
account's writes one at a time, in order of arrival, as many as its credit allows.

The worker's writes (statuses, events, webhook jobs, settled jobs, already rendered into
statements) ride in the same batches: `write_background` queues them beside the accepts, and each
batch takes every waiting accept (up to `max_batch`) and up to `max_background` of them. Neither
side starves the other, and on SQLite every write of the process goes through the one writer.
Nobody waits on a background write but the worker, so a batch of them alone waits up to
`background_window` for company: the commit, not the statements, is what costs (a disk flush),
and a worker that commits every few jobs spends its database's flushes on a handful of rows each.
On PostgreSQL this took one worker from ~160 to 300 deliveries a second (bench/README.md).
A background write that a client waits on (`soon`: a PATCH of a message) ends the window,
taking what has gathered with it. The worker's claims do not: a claim that ended the window let
one worker draining a backlog idle less, but under a steady load it meant a commit per claim,
and cost the worker a tenth more CPU at 500 messages a second (bench.sustained).
The transaction itself is in batch_sql.py, and where it runs in batch_runners.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from tidings.domain.errors import LowBalance
from tidings.metrics import GROUP_COMMIT_BATCH, GROUP_COMMIT_SECONDS
from tidings.store.batch_runners import BatchRunner, batch_runner
from tidings.store.batch_sql import BatchWrite, Debit
from tidings.store.database import Database
from tidings.store.outage import CommitInDoubt, CommittedRowsLost, database_unavailable
from tidings.store.statements import CreditRunsShort, Rows, Statement, returning_count

log = logging.getLogger("tidings.store")
# Four rather than two took one worker's sustainable rate from ~285 to 300 deliveries/s on the
# two-core reference machine (bench.sustained, pg-1api-1worker at 300/s: p95 1.7 s → 0.2-0.3 s).
POSTGRES_COMMITS_IN_FLIGHT = 4
# A background-only batch stops waiting for company once it holds this fraction of max_background.
BACKGROUND_FULL_ENOUGH = 8


class PendingWrite:
    """A write handed to the writer (a plain class: one is made per accept, and a dataclass with
    a factory for its future cost twice as much)."""

    __slots__ = ("done", "soon", "write")

    def __init__(self, write: BatchWrite, soon: bool = False) -> None:
        self.write = write
        self.soon = soon  # a client waits on it: it ends the background window
        # Resolved with the rows of the write's returning statements once the batch has committed.
        self.done: asyncio.Future[list[Rows]] = asyncio.get_running_loop().create_future()


class GroupCommitWriter:
    def __init__(
        self,
        database: Database,
        *,
        max_batch: int,
        window_seconds: float,
        background_window_seconds: float = 0.0,
        max_background: int = 512,
    ) -> None:
        self._database = database
        self._max_batch = max_batch
        self._max_background = max_background
        self._window = window_seconds
        self._background_window = background_window_seconds
        self._urgent: deque[PendingWrite] = deque()
        self._background: deque[PendingWrite] = deque()
        self._soon = 0  # background writes waiting that someone waits on (PendingWrite.soon)
        self._arrived = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        lanes = 1 if database.is_sqlite else POSTGRES_COMMITS_IN_FLIGHT
        self._runners = [batch_runner(database) for _ in range(lanes)]
        self._gathering = asyncio.Lock()  # one batch forms at a time, however many are committing
        self._tasks: list[asyncio.Task[None]] = []
        self.batches_committed = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(runner), name=f"tidings-group-commit-{lane}")
            for lane, runner in enumerate(self._runners)
        ]

    async def stop(self) -> None:
        """Write everything already handed over, then stop."""
        if not self._tasks:
            return
        await self._idle.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for runner in self._runners:
            await runner.close()

    async def write(
        self, inserts: Sequence[tuple[Table, dict[str, Any]]], debit: Debit | None = None
    ) -> None:
        """Returns once the rows are committed; raises LowBalance, or what the database raised.
        A caller cancelled while it waits cancels its future, not its write: the batch writes the
        rows all the same and leaves a cancelled future unsettled (_settle). So neither this nor
        write_background needs `asyncio.shield`, which cost an accept a second future."""
        pending = PendingWrite(BatchWrite(inserts, debit))
        with self._database.urgent_demand():
            self._hand_over(self._urgent, pending)
            await pending.done

    async def write_background(self, statements: Sequence[Statement], *, soon: bool = False) -> list[Rows]:
        """Returns once the statements are committed, in a batch shared with others' writes, with
        the rows of those of them that return rows. `soon`: a client waits on them, so the batch is
        not held back for company."""
        pending = PendingWrite(BatchWrite((), None, statements), soon)
        self._hand_over(self._background, pending)
        return await pending.done

    async def resolve(self, doubt: CommitInDoubt) -> bool:
        """Whether the batch a write failed in doubt with committed, once the database can say;
        until then it keeps asking (cancel it to stop). Any runner can ask: on SQLite there is one,
        and on PostgreSQL the transaction's id is the database's, not the connection's."""
        return await self._runners[0].resolve(doubt)

    def _gathers_more(self) -> bool:
        """Whether a background-only batch is worth waiting on: small, and nobody waits on it."""
        return not self._soon and len(self._background) < self._max_background // BACKGROUND_FULL_ENOUGH

    async def _more_or_window(self) -> None:
        """Waits out the background window, or less: an accept arriving ends it (a client waits
        on that one), as does the batch filling up."""
        deadline = asyncio.get_running_loop().time() + self._background_window
        while not self._urgent and self._gathers_more():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _hand_over(self, queue: deque[PendingWrite], pending: PendingWrite) -> None:
        if not self._tasks:
            raise RuntimeError("the writer is not running")
        queue.append(pending)
        self._soon += pending.soon
        self._unfinished += 1
        self._idle.clear()
        self._arrived.set()

    async def _run(self, runner: BatchRunner) -> None:
        while True:
            async with self._gathering:
                while not self._urgent and not self._background:
                    self._arrived.clear()
                    await self._arrived.wait()
                if self._window > 0 and len(self._urgent) == 1 and not self._background:
                    await asyncio.sleep(self._window)
                elif self._background_window > 0 and not self._urgent and self._gathers_more():
                    await self._more_or_window()
                batch = _take(self._urgent, self._max_batch) + _take(self._background, self._max_background)
                self._soon -= sum(pending.soon for pending in batch)
            try:
                await self._commit(runner, batch)
            finally:
                self._unfinished -= len(batch)
                if not self._unfinished:
                    self._idle.set()

    async def _commit(
        self, runner: BatchRunner, batch: list[PendingWrite], *, retry_on_new_connection: bool = True
    ) -> None:
        reused = runner.connected
        started = time.perf_counter()
        try:
            async with self._database.writing(urgent=True):
                results = await runner.run([pending.write for pending in batch])
        except CreditRunsShort as short:
            await self._commit_short(runner, batch, short.account_id)
            return
        except CommittedRowsLost as lost:
            self.batches_committed += 1
            for pending in batch:
                _settle(pending, lost if returning_count(pending.write.statements) else None)
            return
        except Exception as error:
            if not isinstance(error, IntegrityError):
                await runner.discard()  # the next batch starts on a fresh connection
            if isinstance(error, CommitInDoubt):
                # Written again, it could be written twice; reported written, it may not be.
                for pending in batch:
                    _settle(pending, error)
                return
            if database_unavailable(error):
                if reused and retry_on_new_connection:
                    # The kept connection may have died while idle (server restart, idle timeout):
                    # one more try on a new one before the callers are failed.
                    await self._commit(runner, batch, retry_on_new_connection=False)
                    return
                # No write of the batch is at fault, and one by one each would fail alike.
                for pending in batch:
                    _settle(pending, error)
                return
            if len(batch) == 1:
                _settle(batch[0], error)
                return
            log.warning("group commit of %d writes failed (%r); writing them one by one", len(batch), error)
            for pending in batch:
                await self._commit(runner, [pending])
            return
        self.batches_committed += 1
        GROUP_COMMIT_SECONDS.observe(time.perf_counter() - started)
        GROUP_COMMIT_BATCH.observe(len(batch))
        for pending in batch:
            count = returning_count(pending.write.statements)
            _settle(pending, None, results[:count])
            results = results[count:]

    async def _commit_short(self, runner: BatchRunner, batch: list[PendingWrite], account_id: str) -> None:
        """The batch was rolled back because `account_id` cannot pay for all of its writes in it."""
        if len(batch) == 1:
            _settle(batch[0], LowBalance())
            return
        theirs = [p for p in batch if p.write.debit is not None and p.write.debit.account_id == account_id]
        others = [p for p in batch if p not in theirs]
        if others:
            await self._commit(runner, others)
        for pending in theirs:
            await self._commit(runner, [pending])


def _take(queue: deque[PendingWrite], most: int) -> list[PendingWrite]:
    return [queue.popleft() for _ in range(min(most, len(queue)))]


def _settle(pending: PendingWrite, error: BaseException | None, rows: list[Rows] | None = None) -> None:
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(rows or [])
    else:
        pending.done.set_exception(error)
