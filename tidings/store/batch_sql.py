"""The group commit's transaction, rendered into plain SQL and parameters for the driver.

A batch is the only work on the accept path that touches the database, and running it through
SQLAlchemy's execution layer cost about a tenth of each request (py-spy: compile-cache lookups,
its generic per-row parameter loop). Here each statement is rendered once per (table, columns) and
each row becomes a parameter tuple through the dialect's own bind processors, the ones SQLAlchemy
would apply, so what is written here reads back through SQLAlchemy exactly as if SQLAlchemy had
written it. The result is a list of statements (statements.py) that needs no SQLAlchemy to run:
SQLite's writer process runs it. PostgreSQL, where each statement is a round trip, puts the rows
and debits in one statement instead (postgres_opening.py), with the same encoding and order.

Debits come last, after the rows: a debit locks its account's row until the commit, and every
batch of a busy account debits that one row, so the next batch can insert its rows while the last
one is still committing. Each account is debited once a batch (account_debits). A debit with a
credit limit changes no row when the account cannot pay for its writes in the batch; the
transaction then rolls back with CreditRunsShort, and the group commit writes that account's
writes one at a time (see group_commit.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy.engine import Dialect

from tidings.store.prepared import Prepared, processor_of
from tidings.store.statements import Execute, ExecuteMany, Params, Statement
from tidings.store.tables import accounts, jobs

Row = dict[str, Any]


@dataclass(frozen=True)
class Debit:
    """Money taken from an account's balance in the same transaction as the rows. With a
    `credit_limit`, the balance may not fall below minus that limit: the write is refused
    instead, atomically, so two concurrent writes cannot both spend the last credit."""

    account_id: str
    amount: Decimal
    credit_limit: Decimal | None


@dataclass(frozen=True)
class BatchWrite:
    """One caller's share of a batch: rows to insert (an accepted message and its job) with the
    account's debit, and statements of its own (the worker's, already rendered), run in order
    after every write's rows and debits."""

    inserts: Sequence[tuple[Table, Row]]
    debit: Debit | None
    statements: Sequence[Statement] = ()


class BatchSql:
    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._encoders: dict[tuple[Table, tuple[str, ...]], tuple[str, Callable[[Row], Params]]] = {}
        # SQLite does NUMERIC arithmetic in binary floating point (0 - 0.1 - 0.1 - 0.1 < -0.3):
        # rounded to the column's scale (Numeric(18, 6)), a debit that exactly reaches the limit is
        # accepted and stored balances do not drift. On PostgreSQL the rounding changes nothing.
        remaining = func.round(accounts.c.balance - bindparam("amount", type_=accounts.c.balance.type), 6)
        debit = update(accounts).where(accounts.c.api_key == bindparam("account")).values(balance=remaining)
        self._debit = Prepared(debit, dialect)
        self._guarded_debit = Prepared(
            debit.where(remaining >= bindparam("floor", type_=accounts.c.balance.type)), dialect
        )

    def statements(self, writes: Sequence[BatchWrite]) -> list[Statement]:
        """The batch as one list of statements, to run in order: every write's rows, one
        executemany per table and columns, then one debit per account (and credit limit); then
        each write's own statements."""
        grouped: dict[str, list[Params]] = {}
        for write in writes:
            for table, row in write.inserts:
                sql, encode = self._encoder(table, tuple(row))
                grouped.setdefault(sql, []).append(encode(row))
        statements: list[Statement] = [ExecuteMany(sql, rows) for sql, rows in grouped.items()]
        for debit in account_debits(writes):
            statements.append(self._debit_of(debit))
        statements.extend(statement for write in writes for statement in write.statements)
        return statements

    def _debit_of(self, debit: Debit) -> Execute:
        values = {"amount": debit.amount, "account": debit.account_id}
        if debit.credit_limit is None:
            return self._debit.bind(values)
        bound = self._guarded_debit.bind({**values, "floor": -debit.credit_limit})
        return Execute(bound.sql, bound.params, guarded_account=debit.account_id)

    def _encoder(self, table: Table, columns: tuple[str, ...]) -> tuple[str, Callable[[Row], Params]]:
        key = (table, columns)
        found = self._encoders.get(key)
        if found is None:
            prepared = Prepared(insert(table), self._dialect, column_keys=list(columns), for_executemany=True)
            position = {name: i for i, name in enumerate(columns)}
            order = [position[name] for name in prepared.names]
            processors = [processor_of(table.c[columns[i]].type, self._dialect) for i in order]
            found = (prepared.sql, _row_encoder(order, processors))
            self._encoders[key] = found
        return found


def queues_jobs(writes: Sequence[BatchWrite]) -> bool:
    """Whether the batch inserts a job. Only then does its commit wake the workers of other
    processes (PostgreSQL, job_signals.py): a worker's claim ends in a commit, and were that to
    wake it, an idle worker would claim in a loop."""
    return any(table is jobs for write in writes for table, _ in write.inserts) or any(
        isinstance(statement, Execute) and statement.queues_job
        for write in writes
        for statement in write.statements
    )


def account_debits(writes: Sequence[BatchWrite]) -> list[Debit]:
    """One debit per account: the sum of its writes' amounts, under the strictest credit limit
    among them (none when none has one; a limit can change between two sends of a batch). When
    that refuses, the group commit writes the account's writes one by one, each under its own
    limit. In account order for every batch: two batches committing at once then wait for each
    other's account row locks instead of deadlocking."""
    debits: dict[str, Debit] = {}
    for write in writes:
        debit = write.debit
        if debit is None or debit.amount == 0:
            continue
        earlier = debits.get(debit.account_id)
        if earlier is not None:
            limits = [limit for limit in (earlier.credit_limit, debit.credit_limit) if limit is not None]
            debit = Debit(debit.account_id, earlier.amount + debit.amount, min(limits) if limits else None)
        debits[debit.account_id] = debit
    return [debits[account_id] for account_id in sorted(debits)]


def _row_encoder(order: list[int], processors: list[Callable[[Any], Any] | None]) -> Callable[[Row], Params]:
    steps = list(zip(order, processors, strict=True))

    def encode(row: Row) -> Params:
        values = list(row.values())
        return tuple(values[i] if process is None else process(values[i]) for i, process in steps)

    return encode
