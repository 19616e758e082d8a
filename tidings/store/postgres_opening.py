"""A batch's opening on PostgreSQL: its accepted rows, its debits, its name and its wake-up call,
all in one statement.

An accepts-only batch used to cost six round trips: BEGIN, an executemany per table (messages,
jobs), a debit per account, the statement naming the transaction, COMMIT. At an open-loop
load of a few hundred messages a second a batch holds one or two messages, so those round trips
were most of the API process's database work (py-spy: 40% of its CPU in the group commit) and
kept PostgreSQL's backends busy on a machine whose cores the worker needs too. Here they are one
statement of data-modifying CTEs, each column's values passed as one array and spread back into
rows by `unnest`, so a batch is BEGIN, this statement, COMMIT: three round trips whatever its size.

The statement's answer is one row: the transaction's id (txid_current(): the same wherever in the
transaction it is asked, so it can be asked first; batch_runners.py uses it when the COMMIT's
answer is lost), and the accounts whose debit changed their row. An account with a credit limit
missing from that list cannot pay for its writes in this batch: the runner rolls back with
CreditRunsShort, as a guarded debit of batch_sql.py would. pg_notify, when the batch queues a job,
takes effect at COMMIT wherever in the transaction it is called.

Debits lock account rows. Two batches locking the same accounts in different orders would
deadlock, so the `locked` CTE takes the locks first, in account order (FOR UPDATE with ORDER BY
locks rows in that order), and the UPDATE joins on it: it can reach an account only after every
account before it is locked. Each account is debited once per batch, as on SQLite
(batch_sql.account_debits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from tidings.store.batch_sql import BatchWrite, account_debits, queues_jobs
from tidings.store.job_signals import NOTIFY_CALL
from tidings.store.prepared import Processor, processor_of
from tidings.store.tables import accounts

Row = dict[str, Any]
Shape = tuple[Table, tuple[str, ...]]  # rows of one table with one set of columns


@dataclass(frozen=True)
class Opening:
    """The statement and its arguments (one array per column); `guarded` are the accounts with a
    credit limit, each of which must come back among the debited accounts."""

    sql: str
    arguments: tuple[Any, ...]
    guarded: frozenset[str]


@dataclass(frozen=True)
class _InsertShape:
    """How rows of one table with one set of columns become a CTE: its SQL, with the array
    parameters numbered from a start given later, and each column's bind processor."""

    table: Table
    columns: tuple[str, ...]
    casts: tuple[str, ...]
    processors: tuple[Processor, ...]

    def cte(self, name: str, first_parameter: int, dialect: Dialect) -> str:
        quote = dialect.identifier_preparer.quote
        arrays = ", ".join(f"${first_parameter + i}::{cast}[]" for i, cast in enumerate(self.casts))
        columns = ", ".join(quote(column) for column in self.columns)
        # Only our own table's and columns' names go into the SQL; every value is a parameter.
        return f"{name} AS (INSERT INTO {quote(self.table.name)} ({columns}) SELECT * FROM unnest({arrays}))"  # noqa: S608

    def arrays(self, rows: Sequence[Row]) -> list[list[Any]]:
        return [
            [value if process is None or value is None else process(value) for value in values]
            for values, process in zip(
                zip(*(tuple(row[column] for column in self.columns) for row in rows), strict=True),
                self.processors,
                strict=True,
            )
        ]


class PostgresOpening:
    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._shapes: dict[Shape, _InsertShape] = {}
        self._statements: dict[tuple[tuple[Shape, ...], bool, bool], str] = {}
        balance = accounts.c.balance.type.compile(dialect=dialect)
        key = accounts.c.api_key.type.compile(dialect=dialect)
        self._debit_casts = (key, balance, balance)

    def build(self, writes: Sequence[BatchWrite]) -> Opening:
        grouped: dict[Shape, list[Row]] = {}
        for write in writes:
            for table, row in write.inserts:
                grouped.setdefault((table, tuple(row)), []).append(row)
        debits = account_debits(writes)
        arguments: list[Any] = []
        for key, rows in grouped.items():
            arguments.extend(self._shape(*key).arrays(rows))
        if debits:
            arguments.append([debit.account_id for debit in debits])
            arguments.append([debit.amount for debit in debits])
            arguments.append([_floor(debit.credit_limit) for debit in debits])
        sql = self._sql(tuple(grouped), bool(debits), queues_jobs(writes))
        guarded = frozenset(debit.account_id for debit in debits if debit.credit_limit is not None)
        return Opening(sql, tuple(arguments), guarded)

    def _sql(self, groups: tuple[Shape, ...], debits: bool, notify: bool) -> str:
        key = (groups, debits, notify)
        sql = self._statements.get(key)
        if sql is None:
            sql = self._statements[key] = self._render(groups, debits, notify)
        return sql

    def _render(self, groups: tuple[Shape, ...], debits: bool, notify: bool) -> str:
        ctes: list[str] = []
        parameter = 1
        for number, key in enumerate(groups):
            shape = self._shape(*key)
            ctes.append(shape.cte(f"inserted_{number}", parameter, self._dialect))
            parameter += len(shape.columns)
        debited = "ARRAY[]::text[]"
        if debits:
            account, amount, floor = (
                f"${parameter + i}::{cast}[]" for i, cast in enumerate(self._debit_casts)
            )
            remaining = "round(accounts.balance - debit.amount, 6)"
            # What is formatted in is parameter numbers and type names: every value is a parameter.
            ctes.append(
                f"locked AS (SELECT api_key FROM accounts WHERE api_key = ANY({account})"  # noqa: S608
                " ORDER BY api_key FOR UPDATE)"
            )
            ctes.append(
                f"debited AS (UPDATE accounts SET balance = {remaining}"  # noqa: S608
                f" FROM locked JOIN unnest({account}, {amount}, {floor}) AS debit(account, amount, floor)"
                " ON debit.account = locked.api_key"
                f" WHERE accounts.api_key = debit.account AND (debit.floor IS NULL OR {remaining} >= debit.floor)"
                " RETURNING accounts.api_key)"
            )
            debited = "ARRAY(SELECT api_key FROM debited)::text[]"
        select = f"SELECT txid_current(), {debited}" + (f", {NOTIFY_CALL}" if notify else "")
        return f"WITH {', '.join(ctes)} {select}" if ctes else select

    def _shape(self, table: Table, columns: tuple[str, ...]) -> _InsertShape:
        key = (table, columns)
        shape = self._shapes.get(key)
        if shape is None:
            types = [table.c[column].type for column in columns]
            shape = self._shapes[key] = _InsertShape(
                table,
                columns,
                tuple(column_type.compile(dialect=self._dialect) for column_type in types),
                tuple(processor_of(column_type, self._dialect) for column_type in types),
            )
        return shape


def _floor(credit_limit: Decimal | None) -> Decimal | None:
    """How low the balance may go: minus the credit limit; None when there is none."""
    return None if credit_limit is None else -credit_limit
