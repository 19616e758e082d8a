"""Which errors mean "the database is out of reach for now" (a 503, a retried settle)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tidings.store.outage import CommitInDoubt, database_unavailable


def raised_while_handling(cause: BaseException, error: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException:
            raise error  # noqa: B904 - implicit chaining (__context__) is what is tested
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432), [Errno 111] …"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        OperationalError("BEGIN", None, Exception("database is locked")),
        DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True),
        raised_while_handling(
            asyncpg.ConnectionDoesNotExistError("closed"),
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        ),
        # The state error at COMMIT while the server's shutdown message was being read: no cause
        # of its own, but the runner could not find out what became of the batch.
        raised_while_handling(
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
            CommitInDoubt("the answer to the COMMIT of transaction 781 was lost", 781),
        ),
    ],
    ids=repr,
)
def test_out_of_reach(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", None, Exception("duplicate key")),
        asyncpg.UniqueViolationError("duplicate key"),
        DBAPIError("SELECT", None, Exception("syntax error")),
        ValueError("bad input"),
        RuntimeError("bug"),
        FileNotFoundError(2, "No such file or directory"),
        PermissionError(13, "Permission denied"),
    ],
    ids=repr,
)
def test_not_an_outage(error: BaseException) -> None:
    assert not database_unavailable(error)


def test_a_driver_error_wrapped_by_sqlalchemy_is_looked_through() -> None:
    wrapped = DBAPIError("SELECT 1", None, Exception("adapter"))
    wrapped.orig.__cause__ = asyncpg.CannotConnectNowError("starting up")  # type: ignore[union-attr]
    assert database_unavailable(wrapped)
