"""A group commit's transaction, as the driver runs it: SQL and parameters, nothing else.

batch_sql.py renders a batch into these statements (the accepted messages), and prepared.py the
worker's writes; the SQLite writer process and the PostgreSQL runner execute them in order. A
statement may guard the ones after it: when it changes no row, the next `skip_if_unchanged` are
skipped (a status that had already moved on records no second event). A statement marked
`returning` gives back its rows (a claim of due jobs), in the order such statements ran. This module imports only the standard library, because the SQLite
writer process imports it and should start in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Params = tuple[Any, ...]


# Not frozen: a frozen dataclass takes 3 µs to make, this one 0.6, and the worker makes some 25 a
# message. Nothing changes one once it is handed to a commit.
@dataclass(slots=True)
class Execute:
    sql: str
    params: Params
    # A debit with a credit limit: when it changes no row, that account cannot pay for its writes
    # in this batch, and the transaction is rolled back (CreditRunsShort).
    guarded_account: str | None = None
    skip_if_unchanged: int = 0
    returning: bool = False
    # It inserts a job: on PostgreSQL its batch sends a NOTIFY that wakes other processes'
    # workers (job_signals.py). A batch that queues nothing (a claim, most settles) sends none.
    queues_job: bool = False


@dataclass(frozen=True)
class ExecuteMany:
    sql: str
    rows: list[Params]


Statement = Execute | ExecuteMany
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Ran:
    """What running one statement did: rows changed, and its rows if it returns any."""

    changed: int
    rows: Rows | None = None


class CreditRunsShort(Exception):
    """An account cannot pay for all of its writes in a batch."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


def execute_all(statements: Sequence[Statement], execute: Callable[[Statement], Ran]) -> list[Rows]:
    """Runs the statements in order; returns the rows of each `returning` statement, an empty
    list for one that was skipped."""
    results: list[Rows] = []
    index = 0
    while index < len(statements):
        ran = execute(statements[index])
        index += 1 + _after(statements[index], ran, results, statements[index + 1 :])
    return results


async def execute_all_async(
    statements: Sequence[Statement], execute: Callable[[Statement], Awaitable[Ran]]
) -> list[Rows]:
    results: list[Rows] = []
    index = 0
    while index < len(statements):
        ran = await execute(statements[index])
        index += 1 + _after(statements[index], ran, results, statements[index + 1 :])
    return results


def _after(statement: Statement, ran: Ran, results: list[Rows], following: Sequence[Statement]) -> int:
    """Collects a returning statement's rows; says how many statements to skip."""
    if isinstance(statement, Execute) and statement.returning:
        results.append(ran.rows or [])
    skip = _skipped(statement, ran.changed)
    results.extend([] for skipped in following[:skip] if isinstance(skipped, Execute) and skipped.returning)
    return skip


def returning_count(statements: Sequence[Statement]) -> int:
    return sum(1 for statement in statements if isinstance(statement, Execute) and statement.returning)


def _skipped(statement: Statement, changed: int) -> int:
    """How many of the following statements to skip after this one changed `changed` rows."""
    if changed or not isinstance(statement, Execute):
        return 0
    if statement.guarded_account is not None:
        raise CreditRunsShort(statement.guarded_account)
    return statement.skip_if_unchanged
