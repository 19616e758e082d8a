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
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.errors import LowBalance
from tidings.store.database import Database
from tidings.store.tables import accounts

log = logging.getLogger("tidings.store")


@dataclass(frozen=True)
class Debit:
    """Money taken from an account's balance in the same transaction as the rows. With a
    `credit_limit`, the balance may not fall below minus that limit: the write is refused with
    LowBalance instead, atomically, so two concurrent writes cannot both spend the last credit."""

    account_id: str
    amount: Decimal
    credit_limit: Decimal | None


@dataclass(eq=False)
class PendingWrite:
    inserts: Sequence[tuple[Table, dict[str, Any]]]
    debit: Debit | None = None
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitWriter:
    def __init__(self, database: Database, *, max_batch: int, window_seconds: float) -> None:
        self._database = database
        self._max_batch = max_batch
        self._window = window_seconds
        self._queue: asyncio.Queue[PendingWrite] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None

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
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def write(
        self, inserts: Sequence[tuple[Table, dict[str, Any]]], debit: Debit | None = None
    ) -> None:
        """Returns once the rows are committed; raises LowBalance, or what the database raised."""
        if self._task is None:
            raise RuntimeError("the writer is not running")
        pending = PendingWrite(inserts, debit)
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

    async def _connection(self) -> AsyncConnection:
        # The writer keeps one connection for itself: no pool check-out, ping and reset per batch.
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = await self._database.engine.connect()
        return self._conn

    async def _commit(self, batch: list[PendingWrite], *, retry_on_new_connection: bool = True) -> None:
        reused = self._conn is not None
        try:
            conn = await self._connection()
            try:
                async with self._database.writing(urgent=True), conn.begin():
                    refused = await _apply_debits(conn, batch)
                    await _insert_all(conn, [pending for pending in batch if pending not in refused])
            except Exception:
                # Whatever broke, the next batch starts on a fresh connection.
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
        except Exception as error:
            if len(batch) == 1:
                if reused and retry_on_new_connection and not isinstance(error, IntegrityError):
                    # The kept connection may have died while idle (server restart, idle timeout):
                    # one more try on a new one before the caller is failed.
                    await self._commit(batch, retry_on_new_connection=False)
                    return
                _settle(batch[0], error)
                return
            log.warning("group commit of %d writes failed (%r); writing them one by one", len(batch), error)
            for pending in batch:
                await self._commit([pending])
            return
        for pending in batch:
            _settle(pending, LowBalance() if pending in refused else None)


async def _apply_debits(conn: AsyncConnection, batch: list[PendingWrite]) -> list[PendingWrite]:
    """Guarded debits one by one (each may be refused); unguarded ones summed per account."""
    refused: list[PendingWrite] = []
    unguarded: dict[str, Decimal] = {}
    for pending in batch:
        debit = pending.debit
        if debit is None or debit.amount == 0:
            continue
        if debit.credit_limit is None:
            unguarded[debit.account_id] = unguarded.get(debit.account_id, Decimal(0)) + debit.amount
            continue
        remaining = _at_balance_scale(accounts.c.balance - debit.amount)
        result = await conn.execute(
            update(accounts)
            .where(accounts.c.api_key == debit.account_id, remaining >= -debit.credit_limit)
            .values(balance=remaining)
        )
        if result.rowcount == 0:
            refused.append(pending)
    for account_id, amount in unguarded.items():
        await conn.execute(
            update(accounts)
            .where(accounts.c.api_key == account_id)
            .values(balance=_at_balance_scale(accounts.c.balance - amount))
        )
    return refused


def _at_balance_scale(amount: Any) -> Any:
    # SQLite does NUMERIC arithmetic in binary floating point (0 - 0.1 - 0.1 - 0.1 < -0.3): rounded
    # to the column's scale (Numeric(18, 6)), a debit that exactly reaches the limit is accepted and
    # stored balances do not drift. On PostgreSQL the rounding changes nothing.
    return func.round(amount, 6)


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
