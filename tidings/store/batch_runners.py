"""Where the group commit's transaction runs: SQLite's writer process, or asyncpg on PostgreSQL.

Both keep one connection for the writer alone (no pool check-out, ping and reset per batch) and
drop it after a failure, so that the next batch starts on a fresh one.

When the answer to a COMMIT is lost (the connection, or SQLite's writer process, died after the
COMMIT went out), the transaction may have committed or not, and writing the batch again would
either fail on its own rows (an accepted message's uuid: a 500 for a message that is stored) or
apply a worker's writes twice. So the runner finds out which it was before it answers:
PostgreSQL by the transaction's id, which the batch's first statement returns; the SQLite runner
by its commit marker, a row of its own that each batch sets to the batch's number. What it cannot
find out at once (the database is out of reach) it raises as CommitInDoubt, which names the
transaction; nobody writes that batch again, but `resolve` keeps asking until the database
answers, so that a caller that can wait (the worker) learns what happened as soon as it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.store import sqlite_writer_process
from tidings.store.batch_sql import BatchSql, BatchWrite
from tidings.store.database import Database
from tidings.store.outage import CommitInDoubt, CommittedRowsLost, database_unavailable
from tidings.store.postgres_opening import Opening, PostgresOpening
from tidings.store.postgres_waves import run_programs
from tidings.store.statements import CreditRunsShort, Execute, Rows, Statement
from tidings.store.tables import commit_markers

# How long a writer process that was asked to stop may take to finish its transaction.
SQLITE_WRITER_EXIT_SECONDS = 10.0
# How long a runner whose COMMIT answer was lost keeps asking whether that transaction is still
# in progress (its server may not yet have noticed the connection is gone, or be flushing it); a
# runner may be given less (a test that holds the transaction open).
IN_DOUBT_SECONDS = 5.0
IN_DOUBT_FIRST_PAUSE_SECONDS = 0.01
IN_DOUBT_MAX_PAUSE_SECONDS = 0.25
# How often `resolve` asks again while the database is out of reach or the transaction still runs:
# soon at first, then every couple of seconds, so that a database back from a restart is not met
# by every doubt at once.
RESOLVE_FIRST_PAUSE_SECONDS = 0.1
RESOLVE_MAX_PAUSE_SECONDS = 2.0
# PostgreSQL's "transaction ID … is in the future" (invalid_parameter_value, from txid_status).
_INVALID_PARAMETER_VALUE = "22023"


class BatchRunner(Protocol):
    @property
    def connected(self) -> bool: ...

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        """Commits the writes in one transaction; returns the rows of their returning statements,
        in order. Raises CreditRunsShort (nothing written) when an account cannot pay for all of
        its writes, or what the database raised: CommitInDoubt when the answer to its COMMIT was
        lost and whether it committed is unknown, CommittedRowsLost when it committed but the rows
        were lost with the answer."""

    async def resolve(self, doubt: CommitInDoubt) -> bool:
        """Whether the batch `doubt` names committed. Asks until the database can say, however
        long it is out of reach (the caller cancels it to stop); raises any other error."""

    async def discard(self) -> None:
        """Drops the connection; the next batch opens a new one."""

    async def close(self) -> None: ...


def batch_runner(database: Database) -> BatchRunner:
    if database.is_sqlite:
        return SqliteBatchRunner(database)
    return PostgresBatchRunner(database.engine)


class SqliteBatchRunner:
    """Hands each transaction to the writer process (sqlite_writer_process.py), started on the
    first batch and again after any failure.

    Each transaction also sets the runner's commit marker (a row of `commit_markers`, under a key
    of this runner's own: another process's writer shares the file) to the batch's number. When
    the process dies with a batch in hand, its transaction is either in the file or rolled back
    by the next connection, so the marker says at once which. It costs one row written in the
    writer process, within a commit that flushes anyway: no round trip. Until the marker has been
    read (only a database out of reach stops that) the runner sends no other batch, which would
    set the marker again."""

    def __init__(self, database: Database) -> None:
        path = make_url(database.url).database
        if not path or path == ":memory:":
            raise ValueError("Tidings needs an SQLite database file, not an in-memory database")
        self._path = path
        self._database = database
        self._sql = BatchSql(database.engine.dialect)
        self._process: asyncio.subprocess.Process | None = None
        self._writer_key = uuid.uuid4().hex
        self._batches = 0
        self._undecided: int | None = None  # the batch whose marker could not be read yet
        self._decided: dict[int, bool] = {}  # batches in doubt whose answer is known

    @property
    def connected(self) -> bool:
        return self._process is not None

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        if self._undecided is not None:
            await self._decide()  # out of reach still: nothing of this batch was sent
        self._batches += 1
        batch = self._batches
        mark = Execute(
            "INSERT INTO commit_markers (writer, batch) VALUES (?, ?) "
            "ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch",
            (self._writer_key, batch),
        )
        try:
            answer = await self._send([mark, *self._sql.statements(writes)])
        except asyncio.IncompleteReadError as error:
            # The process died with the batch in hand (killed, out of memory): before, during or
            # after its COMMIT.
            self._undecided = batch
            try:
                committed = await self._decide()
            except Exception as reading:
                if not database_unavailable(reading):
                    raise
                raise CommitInDoubt(
                    f"the SQLite writer process died before answering batch {batch}", batch
                ) from error
            del self._decided[batch]
            if not committed:
                # Nothing was written: like a connection lost before its COMMIT, the batch may be
                # written again.
                raise ConnectionAbortedError("the SQLite writer process died before committing") from error
            raise CommittedRowsLost("the SQLite writer process died after its commit") from error
        match answer:
            case ("committed", results):
                return list(results)
            case ("short", account_id):
                raise CreditRunsShort(account_id)
            case ("integrity", sql, message):
                raise IntegrityError(sql, None, sqlite3.IntegrityError(message))
            case _:
                raise SqliteWriterFailed(str(answer[-1]))

    async def resolve(self, doubt: CommitInDoubt) -> bool:
        pause = RESOLVE_FIRST_PAUSE_SECONDS
        while doubt.transaction not in self._decided:
            if self._undecided != doubt.transaction:
                # Not a batch of this runner's: nothing says it did not commit.
                return True
            try:
                await self._decide()
            except Exception as error:
                if not database_unavailable(error):
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESOLVE_MAX_PAUSE_SECONDS)
        return self._decided.pop(doubt.transaction)

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
        """Removes the runner's marker (a crash leaves it: one small row) and stops the process."""
        if self._batches and self._undecided is None:
            with contextlib.suppress(Exception):
                delete = Execute("DELETE FROM commit_markers WHERE writer = ?", (self._writer_key,))
                await self._send([delete])
        await self.discard()

    async def _send(self, statements: list[Statement]) -> tuple[Any, ...]:
        """The writer process's answer to one transaction. Raises IncompleteReadError, after
        waiting for the process to end, when it died first."""
        frame = sqlite_writer_process.encode_frame(statements)
        process = await self._started()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(frame)
        await process.stdin.drain()
        try:
            answer: tuple[Any, ...] = await sqlite_writer_process.read_frame_async(process.stdout)
        except asyncio.IncompleteReadError:
            await self.discard()  # once it is gone, the file says what became of its transaction
            raise
        return answer

    async def _decide(self) -> bool:
        """Reads the marker: whether the undecided batch committed (its number is there)."""
        batch = self._undecided
        assert batch is not None
        query = select(commit_markers.c.batch).where(commit_markers.c.writer == self._writer_key)
        async with self._database.read_engine.connect() as conn:
            marked = await conn.scalar(query)
        self._decided[batch] = committed = marked == batch
        self._undecided = None
        return committed

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
    """A batch is BEGIN, its opening (accepted rows, debits, the transaction's name and the
    workers' wake-up in one statement: postgres_opening.py), the writes' own statements in waves
    (postgres_waves.py), and COMMIT."""

    def __init__(self, engine: AsyncEngine, *, in_doubt_seconds: float = IN_DOUBT_SECONDS) -> None:
        self._engine = engine
        self._opening = PostgresOpening(engine.dialect)
        self._conn: AsyncConnection | None = None
        self._in_doubt_seconds = in_doubt_seconds

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def run(self, writes: Sequence[BatchWrite]) -> list[Rows]:
        opening = self._opening.build(writes)
        programs = [write.statements for write in writes if write.statements]
        if self._conn is None:
            self._conn = await self._engine.connect()
        raw = await self._conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        transaction = driver.transaction()
        try:
            await transaction.start()
        except asyncpg.InternalClientError as error:
            # asyncpg's own state error, at BEGIN on the kept connection: its server closed it
            # while it sat idle (a shutdown's message crossing the BEGIN on the wire), and asyncpg
            # had not yet noticed. Nothing of the batch ran; the group commit tries it once more on
            # a new connection, as for any connection lost while idle.
            raise asyncpg.ConnectionDoesNotExistError("the kept connection is unusable") from error
        try:
            name = await _open(driver, opening)
            results = await run_programs(driver, programs)
        except BaseException:
            await transaction.rollback()  # what it raises, it raises from the error that caused it
            raise
        try:
            await transaction.commit()
        except Exception as error:
            # asyncpg's own state error counts too, as at BEGIN: its server closed the connection
            # (a shutdown's message crossing the COMMIT), and the COMMIT may or may not have gone
            # out. Left as it is, it would answer an accept with a 500.
            if not database_unavailable(error) and not isinstance(error, asyncpg.InternalClientError):
                raise
            await self.discard()
            match await self._outcome(name):
                case "committed":
                    return results
                case "aborted":
                    # Nothing was written: the batch may be written again.
                    raise asyncpg.ConnectionDoesNotExistError("the COMMIT's connection was lost") from error
                case _:
                    raise CommitInDoubt(
                        f"the answer to the COMMIT of transaction {name} was lost", name
                    ) from error
        return results

    async def resolve(self, doubt: CommitInDoubt) -> bool:
        pause = RESOLVE_FIRST_PAUSE_SECONDS
        while True:
            try:
                async with self._engine.connect() as conn:
                    status = await _status(conn, doubt.transaction)
            except Exception as error:
                if not database_unavailable(error):
                    raise
                status = "in progress"  # as far as anyone can tell
            if status != "in progress":
                # txid_status answers NULL for a transaction too old for it to remember (the
                # database has since run billions of others): taken as committed, which writes
                # nothing twice and at worst leaves a worker's jobs to their leases.
                return status != "aborted"
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESOLVE_MAX_PAUSE_SECONDS)

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

    async def _outcome(self, name: int) -> str | None:
        """What became of the transaction `name` whose COMMIT answer was lost: "committed",
        "aborted", or None when that cannot be found out within `in_doubt_seconds` (the database
        is out of reach, or the transaction still runs: a server that has not yet seen its
        connection close, or that waits on a synchronous standby)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._in_doubt_seconds
        pause = IN_DOUBT_FIRST_PAUSE_SECONDS
        try:
            async with asyncio.timeout(self._in_doubt_seconds), self._engine.connect() as conn:
                while True:
                    status = await _status(conn, name)
                    if status != "in progress" or loop.time() + pause > deadline:
                        return status if status in ("committed", "aborted") else None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, IN_DOUBT_MAX_PAUSE_SECONDS)
        except Exception as error:
            if not database_unavailable(error):
                raise
            return None


async def _status(conn: AsyncConnection, name: int) -> str | None:
    """txid_status of the transaction `name`: "committed", "aborted", "in progress", or None when
    it is too old to tell. A transaction id the server has not reached yet is one whose every
    trace was lost in a crash, before its COMMIT could be durable: aborted. Such an id may also
    have been handed to a new transaction since, whose status is then read instead; that can make
    a transaction that did not commit look committed (nothing is written twice), never the
    reverse: one that committed left its id durable, and it is never handed out again."""
    try:
        status: str | None = await conn.scalar(text("SELECT txid_status(:name)"), {"name": name})
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != _INVALID_PARAMETER_VALUE:
            raise
        await conn.rollback()
        return "aborted"
    return status


async def _open(driver: asyncpg.Connection, opening: Opening) -> int:
    """Runs the opening; the transaction's id. Raises CreditRunsShort when an account with a credit
    limit cannot pay for its writes."""
    try:
        answer = await driver.fetchrow(opening.sql, *opening.arguments)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(opening.sql, None, error) from error
    short = sorted(opening.guarded.difference(answer[1]))
    if short:
        raise CreditRunsShort(short[0])
    return int(answer[0])
