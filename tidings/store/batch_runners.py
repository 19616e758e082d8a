"""Where the group commit's transaction runs: SQLite's writer process, or asyncpg on PostgreSQL.

Both keep one connection for the writer alone (no pool check-out, ping and reset per batch) and
drop it after a failure, so that the next batch starts on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.store import sqlite_writer_process
from tidings.store.batch_sql import BatchSql, BatchWrite
from tidings.store.database import Database
from tidings.store.postgres_waves import run_alone, run_programs
from tidings.store.statements import CreditRunsShort, Rows, execute_all_async

# How long a writer process that was asked to stop may take to finish its transaction.
SQLITE_WRITER_EXIT_SECONDS = 10.0


class BatchRunner(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        """Commits the writes in one transaction; returns the rows of their returning statements,
        in order. Raises CreditRunsShort (nothing written) when an account cannot pay for all of
        its writes, or what the database raised."""

    async def discard(self) -> None:
        """Drops the connection; the next batch opens a new one."""

    async def close(self) -> None: ...


def batch_runner(database: Database) -> BatchRunner:
    if database.is_sqlite:
        return SqliteBatchRunner(database)
    return PostgresBatchRunner(database.engine)


class SqliteBatchRunner:
    """Hands each transaction to the writer process (sqlite_writer_process.py), started on the
    first batch and again after any failure."""

    def __init__(self, database: Database) -> None:
        path = make_url(database.url).database
        if not path or path == ":memory:":
            raise ValueError("Tidings needs an SQLite database file, not an in-memory database")
        self._path = path
        self._sql = BatchSql(database.engine.dialect)
        self._process: asyncio.subprocess.Process | None = None

    @property
    def connected(self) -> bool:
        return self._process is not None

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        frame = sqlite_writer_process.encode_frame(self._sql.statements(writes))
        process = await self._started()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(frame)
        await process.stdin.drain()
        answer: tuple[Any, ...] = await sqlite_writer_process.read_frame_async(process.stdout)
        match answer:
            case ("committed", results):
                return list(results)
            case ("short", account_id):
                raise CreditRunsShort(account_id)
            case ("integrity", sql, message):
                raise IntegrityError(sql, None, sqlite3.IntegrityError(message))
            case _:
                raise SqliteWriterFailed(str(answer[-1]))

    async def discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the process finishes what it is doing and exits
        try:
            await asyncio.wait_for(process.wait(), SQLITE_WRITER_EXIT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def close(self) -> None:
        await self.discard()

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is None:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                sqlite_writer_process.__name__,
                self._path,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,  # Ctrl-C at the terminal is for the server, which stops it
            )
        return self._process


class SqliteWriterFailed(RuntimeError):
    """The writer process could not commit a batch (the database's own error is the message)."""


class PostgresBatchRunner:
    """asyncpg's own executemany sends every row of a statement in one pipelined exchange, and
    the writes' own statements run in waves (postgres_waves.py)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sql = BatchSql(engine.dialect)
        self._conn: AsyncConnection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        plan = self._sql.plan(writes)
        if self._conn is None:
            self._conn = await self._engine.connect()
        raw = await self._conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        async with driver.transaction():
            opened = await execute_all_async(plan.opening, lambda statement: run_alone(driver, statement))
            rows = await run_programs(driver, plan.programs)
            closed = await execute_all_async(plan.closing, lambda statement: run_alone(driver, statement))
            return [*opened, *rows, *closed]

    async def discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
