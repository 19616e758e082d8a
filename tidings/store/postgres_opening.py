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

The rows of one table travel as one JSON document, spread back into rows by
`json_populate_recordset`, rather than as an array per column: orjson writes a batch's rows in C,
where the arrays cost each value a bind processor in Python and asyncpg an element-by-element
shape check (`isinstance` against the abstract collection classes). Building a batch of eight
accepts went from 220 to 35 µs, and the group commit's share of the API process's CPU from 19% to
12% (py-spy, bench.run's PostgreSQL api row); with orjson writing the datetimes too, encoding the
batch takes 8 µs. PostgreSQL parses the document on a core of its own. The arrays stay for what a
JSON document cannot carry exactly: an integer past 64 bits, a string with a lone surrogate or a
NUL inside a JSON column's value (json_populate_recordset refuses both where a JSON column's own
text keeps them), a naive datetime (refused there, as everywhere), or a column of another type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Integer, Numeric, String, Table
from sqlalchemy.engine import Dialect

from tidings.store.batch_sql import BatchWrite, account_debits, queues_jobs
from tidings.store.job_signals import NOTIFY_CALL
from tidings.store.prepared import Processor, processor_of
from tidings.store.tables import accounts
from tidings.store.types import UtcDateTime, in_utc

Row = dict[str, Any]
Shape = tuple[Table, tuple[str, ...]]  # rows of one table with one set of columns
# Column types whose values a JSON document carries exactly (orjson writes aware datetimes itself,
# _json_value the decimals), read back by json_populate_recordset into the column's type.
_JSON_READY = (String, Integer, Boolean, Numeric, UtcDateTime, JSON)


@dataclass(frozen=True)
class Opening:
    """The statement and its arguments (one array per column); `guarded` are the accounts with a
    credit limit, each of which must come back among the debited accounts."""

    sql: str
    arguments: tuple[Any, ...]
    guarded: frozenset[str]


@dataclass(frozen=True)
class _InsertShape:
    """How rows of one table with one set of columns become a CTE: its SQL, with the parameters
    numbered from a start given later, and each column's bind processor (for the arrays)."""

    table: Table
    columns: tuple[str, ...]
    casts: tuple[str, ...]
    processors: tuple[Processor, ...]
    json_ready: bool  # every column's type is in _JSON_READY
    moments: tuple[str, ...]  # the UtcDateTime columns

    def parameters(self, *, from_json: bool) -> int:
        return 1 if from_json else len(self.columns)

    def cte(self, name: str, first_parameter: int, dialect: Dialect, *, from_json: bool) -> str:
        quote = dialect.identifier_preparer.quote
        table = quote(self.table.name)
        columns = ", ".join(quote(column) for column in self.columns)
        # Only our own table's and columns' names go into the SQL; every value is a parameter.
        if from_json:
            source = f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, ${first_parameter}::json)"  # noqa: S608
        else:
            arrays = ", ".join(f"${first_parameter + i}::{cast}[]" for i, cast in enumerate(self.casts))
            source = f"SELECT * FROM unnest({arrays})"  # noqa: S608
        return f"{name} AS (INSERT INTO {table} ({columns}) {source})"

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
        self._statements: dict[tuple[tuple[Shape, ...], bool, bool, bool], str] = {}
        balance = accounts.c.balance.type.compile(dialect=dialect)
        key = accounts.c.api_key.type.compile(dialect=dialect)
        self._debit_casts = (key, balance, balance)

    def build(self, writes: Sequence[BatchWrite]) -> Opening:
        grouped: dict[Shape, list[Row]] = {}
        for write in writes:
            for table, row in write.inserts:
                grouped.setdefault((table, tuple(row)), []).append(row)
        debits = account_debits(writes)
        shapes = [self._shape(*key) for key in grouped]
        json_ready = all(shape.json_ready for shape in shapes) and not _any_naive(shapes, grouped.values())
        documents = _documents(grouped.values()) if json_ready else None
        arguments: list[Any] = []
        if documents is not None:
            arguments.extend(documents)
        else:
            for shape, rows in zip(shapes, grouped.values(), strict=True):
                arguments.extend(shape.arrays(rows))
        if debits:
            arguments.append([debit.account_id for debit in debits])
            arguments.append([debit.amount for debit in debits])
            arguments.append([_floor(debit.credit_limit) for debit in debits])
        sql = self._sql(tuple(grouped), bool(debits), queues_jobs(writes), documents is not None)
        guarded = frozenset(debit.account_id for debit in debits if debit.credit_limit is not None)
        return Opening(sql, tuple(arguments), guarded)

    def _sql(self, groups: tuple[Shape, ...], debits: bool, notify: bool, from_json: bool) -> str:
        key = (groups, debits, notify, from_json)
        sql = self._statements.get(key)
        if sql is None:
            sql = self._statements[key] = self._render(groups, debits, notify, from_json)
        return sql

    def _render(self, groups: tuple[Shape, ...], debits: bool, notify: bool, from_json: bool) -> str:
        ctes: list[str] = []
        parameter = 1
        for number, key in enumerate(groups):
            shape = self._shape(*key)
            ctes.append(shape.cte(f"inserted_{number}", parameter, self._dialect, from_json=from_json))
            parameter += shape.parameters(from_json=from_json)
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
                all(isinstance(column_type, _JSON_READY) for column_type in types),
                tuple(
                    column
                    for column, column_type in zip(columns, types, strict=True)
                    if isinstance(column_type, UtcDateTime)
                ),
            )
        return shape


def _any_naive(shapes: Sequence[_InsertShape], groups: Iterable[Sequence[Row]]) -> bool:
    """Whether a UtcDateTime column holds a naive datetime. orjson would write it without an offset,
    which PostgreSQL would read in the session's time zone; the arrays refuse it (UtcDateTime's
    own check), as every other path does."""
    return any(
        row[column] is not None and row[column].tzinfo is None
        for shape, rows in zip(shapes, groups, strict=True)
        for column in shape.moments
        for row in rows
    )


def _documents(groups: Iterable[Sequence[Row]]) -> list[str] | None:
    """Each group's rows as one JSON array, or None when one of their values cannot travel that
    way exactly (see the module's docstring): the arrays carry them instead. orjson writes an
    aware datetime itself, with its offset (PostgreSQL reads the same instant): four times as fast
    as handing each to _json_value (29 µs a batch of eight accepts)."""
    try:
        documents = [orjson.dumps(rows, default=_json_value) for rows in groups]
    except orjson.JSONEncodeError:
        return None
    # A NUL anywhere is written as this escape (a literal backslash before "u0000" only looks like
    # it, and merely takes the arrays too).
    if any(b"\\u0000" in document for document in documents):
        return None
    return [document.decode() for document in documents]


def _json_value(value: Any) -> str:
    """What orjson does not write itself (decimals; a subclass of datetime), as PostgreSQL reads it
    into the column. A naive datetime raises (UtcDateTime's own check), which sends the batch to
    the arrays, where it fails as it always has."""
    if isinstance(value, datetime):
        return in_utc(value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not written as JSON here")


def _floor(credit_limit: Decimal | None) -> Decimal | None:
    """How low the balance may go: minus the credit limit; None when there is none."""
    return None if credit_limit is None else -credit_limit
