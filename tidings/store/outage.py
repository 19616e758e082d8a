"""Telling "the database cannot be reached right now" apart from every other database error.

A refused or dropped connection, a server shutting down or still starting, a pool or connect
timeout: none of these says anything about the request, and all of them end when the database
is back. The API answers them with a 503 (never a 500), the group commit does not split a batch
over them, and the worker keeps a finished job's outcome until it can be written. A batch whose
COMMIT answer was lost with the connection is CommitInDoubt until the database can say whether
it committed; the worker asks again until it does (BatchRunner.resolve).
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# A file that is missing or may not be read is a fault of its own, not the database's.
_FILESYSTEM: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    # Refused, reset, unreachable, a name that does not resolve, several addresses that all
    # failed ("Multiple exceptions", no errno); TimeoutError, a connect that never completes.
    OSError,
    PoolTimeout,
    OperationalError,  # SQLite's "database is locked" past its busy timeout, PostgreSQL's class 08
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.OperatorInterventionError,  # 57P01 admin shutdown, 57P03 "the database system is starting up"
    asyncpg.InterfaceError,  # "connection is closed": the server went away mid-session
)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error`, or what caused it, means the database is out of reach for now. SQLAlchemy
    wraps the driver's error (`orig`), and the driver's adapter raises its own from it. An error
    raised while handling a lost connection counts as well: asyncpg, rolling back a transaction
    whose connection the server just closed, fails with a state error of its own ("cannot switch
    to state …; another operation is in progress") whose context is the real cause. A commit in
    doubt counts whatever it was raised from: it is only ever raised once the database has gone
    out of reach, and the state error at COMMIT that can start it may carry no cause at all."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CommitInDoubt):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE) and not isinstance(current, _FILESYSTEM):
            return True
        orig = current.orig if isinstance(current, DBAPIError) else None
        if isinstance(orig, BaseException):
            current = orig
        else:
            current = current.__cause__ or current.__context__
    return False


class CommitInDoubt(Exception):
    """A batch's COMMIT went out and its answer never came back, and whether it committed could
    not be found out before the database went out of reach (see batch_runners.py). Its writes may
    or may not be in the database: none of them may be written again, and none reported as
    written, until the runner's `resolve` says which. `transaction` names the batch to it:
    PostgreSQL's transaction id, or the SQLite runner's batch number. Raised from the error that
    lost the answer; database_unavailable counts it whatever that was (the API answers 503)."""

    def __init__(self, message: str, transaction: int) -> None:
        super().__init__(message)
        self.transaction = transaction


class CommittedRowsLost(Exception):
    """A batch committed, but the answer that carried the rows of its returning statements (a
    claim's jobs) was lost: the writes that return no rows are done, the others cannot say what
    they did."""
