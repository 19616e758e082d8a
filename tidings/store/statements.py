"""A group commit's transaction, as the driver runs it: SQL and parameters, nothing else.

batch_sql.py renders a batch into these statements (the accepted messages), and prepared.py the
worker's writes; the SQLite writer process and the PostgreSQL runner execute them in order. A
statement may guard the ones after it: when it changes no row, the next `skip_if_unchanged` are
skipped (a status that had already moved on records no second event). This module imports only the standard library, because the SQLite
writer process imports it and should start in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

Params = tuple[Any, ...]


@dataclass(frozen=True)
class Execute:
    sql: str
    params: Params
    # A debit with a credit limit: when it changes no row, that account cannot pay for its writes
    # in this batch, and the transaction is rolled back (CreditRunsShort).
    guarded_account: str | None = None
    skip_if_unchanged: int = 0


@dataclass(frozen=True)
class ExecuteMany:
    sql: str
    rows: list[Params]


Statement = Execute | ExecuteMany


class CreditRunsShort(Exception):
    """An account cannot pay for all of its writes in a batch."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


def execute_all(statements: Sequence[Statement], execute: Callable[[Statement], int]) -> None:
    """Runs the statements in order; `execute` returns how many rows one changed."""
    index = 0
    while index < len(statements):
        statement = statements[index]
        index += 1 + _skipped(statement, execute(statement))


async def execute_all_async(
    statements: Sequence[Statement], execute: Callable[[Statement], Awaitable[int]]
) -> None:
    index = 0
    while index < len(statements):
        statement = statements[index]
        index += 1 + _skipped(statement, await execute(statement))


def _skipped(statement: Statement, changed: int) -> int:
    """How many of the following statements to skip after this one changed `changed` rows."""
    if changed or not isinstance(statement, Execute):
        return 0
    if statement.guarded_account is not None:
        raise CreditRunsShort(statement.guarded_account)
    return statement.skip_if_unchanged
