"""Where the group commit's transaction runs: a thread of its own on SQLite, asyncpg on PostgreSQL.

Both keep one connection for the writer alone (no pool check-out, ping and reset per batch) and
drop it after any failure, so that the next batch starts on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.store.batch_sql import BatchSql, BatchWrite, CreditRunsShort, Execute, Script, Statement
from tidings.store.database import Database, configure_sqlite_connection


class BatchRunner(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self, writes: Sequence[BatchWrite]) -> set[int]:
        """Commits the writes in one transaction; returns the indexes of those refused for credit."""

    async def discard(self) -> None:
        """Drops the connection; the next batch opens a new one."""

    async def close(self) -> None: ...


def batch_runner(database: Database) -> BatchRunner:
    if database.is_sqlite:
        return SqliteBatchRunner(database)
    return PostgresBatchRunner(database.engine)


class SqliteBatchRunner:
    """The whole transaction goes to one thread in one hand-over: SQLite works (and flushes the
    log to disk) there without the GIL while the event loop serves requests."""

    def __init__(self, database: Database) -> None:
        path = make_url(database.url).database
        if not path or path == ":memory:":
            raise ValueError("Tidings needs an SQLite database file, not an in-memory database")
        self._path = path
        self._sql = BatchSql(database.engine.dialect)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tidings-group-commit")
        self._conn: sqlite3.Connection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def run(self, writes: Sequence[BatchWrite]) -> set[int]:
        refused: set[int] = await self._in_thread(self._write, writes)
        return refused

    async def discard(self) -> None:
        await self._in_thread(self._close)

    async def close(self) -> None:
        await self.discard()
        self._executor.shutdown(wait=False)

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _write(self, writes: Sequence[BatchWrite]) -> set[int]:
        try:
            return self._transaction(self._sql.script(writes))
        except CreditRunsShort:
            return self._transaction(self._sql.careful_script(writes))

    def _transaction(self, script: Script) -> set[int]:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            configure_sqlite_connection(self._conn)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            refused = drive(script, lambda statement: _sqlite_execute(conn, statement))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        return refused

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _sqlite_execute(conn: sqlite3.Connection, statement: Statement) -> int:
    try:
        if isinstance(statement, Execute):
            return conn.execute(statement.sql, statement.params).rowcount
        return conn.executemany(statement.sql, statement.rows).rowcount
    except sqlite3.IntegrityError as error:
        raise IntegrityError(statement.sql, None, error) from error


class PostgresBatchRunner:
    """asyncpg's own executemany sends every row of a statement in one pipelined exchange."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sql = BatchSql(engine.dialect)
        self._conn: AsyncConnection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def run(self, writes: Sequence[BatchWrite]) -> set[int]:
        if self._conn is None:
            self._conn = await self._engine.connect()
        raw = await self._conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            return await self._transaction(driver, self._sql.script(writes))
        except CreditRunsShort:
            return await self._transaction(driver, self._sql.careful_script(writes))

    @staticmethod
    async def _transaction(driver: asyncpg.Connection, script: Script) -> set[int]:
        async with driver.transaction():
            return await drive_async(script, lambda statement: _postgres_execute(driver, statement))

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


async def _postgres_execute(driver: asyncpg.Connection, statement: Statement) -> int:
    try:
        if isinstance(statement, Execute):
            status: str = await driver.execute(statement.sql, *statement.params)
            return int(status.rpartition(" ")[2])  # e.g. "UPDATE 1"
        await driver.executemany(statement.sql, statement.rows)
        return len(statement.rows)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(statement.sql, None, error) from error


def drive(script: Script, execute: Callable[[Statement], int]) -> set[int]:
    try:
        statement = next(script)
        while True:
            statement = script.send(execute(statement))
    except StopIteration as done:
        refused: set[int] = done.value
        return refused


async def drive_async(script: Script, execute: Callable[[Statement], Awaitable[int]]) -> set[int]:
    try:
        statement = next(script)
        while True:
            statement = script.send(await execute(statement))
    except StopIteration as done:
        refused: set[int] = done.value
        return refused
