"""A group commit's transaction, as the driver runs it: SQL and parameters, nothing else.

batch_sql.py renders a batch into these statements; the SQLite writer process and the PostgreSQL
runner execute them in order. This module imports only the standard library, because the SQLite
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
    for statement in statements:
        _check(statement, execute(statement))


async def execute_all_async(
    statements: Sequence[Statement], execute: Callable[[Statement], Awaitable[int]]
) -> None:
    for statement in statements:
        _check(statement, await execute(statement))


def _check(statement: Statement, changed: int) -> None:
    if changed == 0 and isinstance(statement, Execute) and statement.guarded_account is not None:
        raise CreditRunsShort(statement.guarded_account)
