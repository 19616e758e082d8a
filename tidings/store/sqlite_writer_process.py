"""SQLite's group commit runs in a process of its own: `python -m tidings.store.sqlite_writer_process DB`.

Why a process and not a thread: Python's sqlite3 module releases the GIL around every step of
SQLite and must win it back after each row it inserts. In a thread beside a busy event loop, each
of those hand-overs waits for the loop, so a batch of 16 rows took three times as long as the same
batch alone (py-spy, and timing the thread under load). A process has a GIL of its own: the loop
keeps serving requests while the batch commits.

The parent (batch_runners.SqliteBatchRunner) starts it and talks to it over its stdin and stdout.
Each frame is a 4-byte big-endian length and a pickle: the parent sends a transaction (a list of
statements from statements.py) and waits for the answer before sending the next. Pickle is safe
here because both ends are this program and the pipe is private to them.

The process exits when its stdin closes: when the parent closes it, or dies (even by SIGKILL).
It runs in a session of its own, out of reach of Ctrl-C at the terminal, and ignores SIGINT and
SIGTERM (a service manager may signal every process of the service): the parent, still draining
its requests, decides when writing stops.
This module imports only the standard library, so that the process starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sqlite3
import struct
import sys
from typing import IO, TYPE_CHECKING, Any

from tidings.store.sqlite_connection import configure_sqlite_connection
from tidings.store.statements import CreditRunsShort, Execute, Ran, Rows, Statement, execute_all

if TYPE_CHECKING:
    import asyncio  # the parent's side only; the process itself never imports it

HEADER = struct.Struct("!I")

# Answers: ("committed", rows of the returning statements), ("short", account_id),
# ("integrity", sql, message), ("failed", message).
Answer = tuple[Any, ...]


def encode_frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def read_frame(stream: IO[bytes]) -> Any | None:
    """The next value, or None when the stream has ended."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return _decode(data)


async def read_frame_async(stream: asyncio.StreamReader) -> Any:
    """The parent's side: the next value; raises IncompleteReadError when the process is gone."""
    (size,) = HEADER.unpack(await stream.readexactly(HEADER.size))
    return _decode(await stream.readexactly(size))


def _decode(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 (frames come from this program only, see above)


class _Writer:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def commit(self, statements: list[Statement]) -> Answer:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        running: list[Statement] = []
        try:
            results = execute_all(statements, lambda statement: self._execute(conn, statement, running))
            conn.execute("COMMIT")
        except CreditRunsShort as short:
            self._roll_back(conn)
            return ("short", short.account_id)
        except sqlite3.IntegrityError as error:
            self._roll_back(conn)
            return ("integrity", running[-1].sql if running else "", str(error))
        except Exception as error:
            # Whatever broke, the next transaction starts on a fresh connection.
            self._roll_back(conn)
            self.close()
            return ("failed", f"{type(error).__name__}: {error}")
        return ("committed", results)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, timeout=30)
            configure_sqlite_connection(self._conn)
        return self._conn

    @staticmethod
    def _execute(conn: sqlite3.Connection, statement: Statement, running: list[Statement]) -> Ran:
        running.append(statement)
        if isinstance(statement, Execute):
            cursor = conn.execute(statement.sql, statement.params)
            if statement.returning:
                rows: Rows = cursor.fetchall()
                return Ran(len(rows), rows)
            return Ran(cursor.rowcount)
        return Ran(conn.executemany(statement.sql, statement.rows).rowcount)

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tidings.store.sqlite_writer_process DATABASE_FILE", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests = sys.stdin.buffer
    # Answers go out on a copy of stdout; stdout itself now points at stderr, so that nothing
    # printed by accident can corrupt the frames.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    writer = _Writer(argv[1])
    try:
        while (statements := read_frame(requests)) is not None:
            answers.write(encode_frame(writer.commit(statements)))
            answers.flush()
    except BrokenPipeError:
        pass  # the parent is gone
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
