"""The worker's writes on PostgreSQL, a few round trips per batch rather than one per statement.

A batch of the worker's writes is one program per settled job (statements.py): a fenced settle,
then its status changes, events, parts and new jobs, each statement skipping the rest of its
group when it changed nothing. Run as they stand, that is a round trip per statement, and a
batch of 200 settled jobs spends 1,200 round trips — most of one worker's CPU (py-spy: asyncpg's
per-call path), and a transaction held open for all of them.

The programs of one batch are independent of each other (each touches its own job and message;
two receipts for parts of one message are the exception, and end the same either way: whichever
runs its status change second finds the message moved on and changes nothing). So they can run
side by side: in each wave, the next statement of every program still running, grouped by SQL,
each group sent as one pipelined exchange (asyncpg's fetchmany). To learn which of a group's
statements changed a row, and so which programs go on, each is given `RETURNING <its program's
number>`; a group none of whose counts decides anything (the last statement of each program,
mostly) runs without it. A batch then costs about as many round trips as its longest program has
statements, times the few statement shapes in each wave.

Statements that return rows of their own (a claim of due jobs), or that are not a plain INSERT,
UPDATE or DELETE, run alone, as before. SQLite runs its programs in order in the writer process,
where a statement costs no round trip.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import asyncpg
from sqlalchemy.exc import IntegrityError

from tidings.store.statements import CreditRunsShort, Execute, ExecuteMany, Ran, Rows, Statement

_DATA_CHANGE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass
class _Program:
    statements: Sequence[Statement]
    at: int = 0
    results: list[Rows] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.at < len(self.statements)

    def after(self, ran: Ran) -> None:
        """Moves past the statement just run (and the ones it skips when it changed nothing)."""
        statement = self.statements[self.at]
        self.at += 1
        if isinstance(statement, ExecuteMany):
            return
        if statement.returning:
            self.results.append(ran.rows or [])
        if ran.changed:
            return
        if statement.guarded_account is not None:
            raise CreditRunsShort(statement.guarded_account)
        skipped = self.statements[self.at : self.at + statement.skip_if_unchanged]
        self.results.extend([] for s in skipped if isinstance(s, Execute) and s.returning)
        self.at += len(skipped)


async def run_programs(driver: asyncpg.Connection, programs: Sequence[Sequence[Statement]]) -> list[Rows]:
    """Runs the programs in waves; returns the rows of their returning statements, program by
    program in the order given, as running them one after another would."""
    running = [_Program(statements) for statements in programs]
    while active := [program for program in running if program.running]:
        shared: dict[str, list[int]] = {}
        for number, program in enumerate(active):
            statement = program.statements[program.at]
            if _pipelines(statement):
                assert isinstance(statement, Execute)
                shared.setdefault(statement.sql, []).append(number)
            else:
                program.after(await run_alone(driver, statement))
        for sql, numbers in shared.items():
            changed = await _run_together(driver, sql, [(number, active[number]) for number in numbers])
            for number in numbers:
                active[number].after(Ran(changed.get(number, 0)))
    return [rows for program in running for rows in program.results]


def _pipelines(statement: Statement) -> bool:
    return isinstance(statement, Execute) and not statement.returning and _shareable(statement.sql)


@functools.cache  # one answer per statement shape: the SQL comes from prepared statements only
def _shareable(sql: str) -> bool:
    """A plain INSERT, UPDATE or DELETE, to which a RETURNING can be added."""
    return _DATA_CHANGE.match(sql) is not None and " RETURNING " not in sql.upper()


async def _run_together(
    driver: asyncpg.Connection, sql: str, programs: list[tuple[int, _Program]]
) -> dict[int, int]:
    """One statement per program, in one exchange; how many rows each program's statement changed."""
    statements = [program.statements[program.at] for _, program in programs]
    assert all(isinstance(statement, Execute) for statement in statements)
    executes = cast(list[Execute], statements)
    if len(programs) == 1:
        return {programs[0][0]: (await run_alone(driver, executes[0])).changed}
    try:
        if not any(_decides(statement) for statement in executes):
            # No program's course depends on what these change (each is the last of its program,
            # or guards nothing): rows that answer nobody would only cost their decoding.
            await driver.executemany(sql, [statement.params for statement in executes])
            return {}
        tagged = f"{sql} RETURNING ${len(executes[0].params) + 1}::integer"
        arguments = [
            (*statement.params, number) for (number, _), statement in zip(programs, executes, strict=True)
        ]
        changed: dict[int, int] = {}
        for record in await driver.fetchmany(tagged, arguments):
            changed[record[0]] = changed.get(record[0], 0) + 1
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(sql, None, error) from error
    return changed


def _decides(statement: Execute) -> bool:
    """Whether how many rows the statement changes decides what runs next (or fails the batch)."""
    return statement.skip_if_unchanged > 0 or statement.guarded_account is not None


async def run_alone(driver: asyncpg.Connection, statement: Statement) -> Ran:
    try:
        if isinstance(statement, Execute):
            if statement.returning:
                rows = [tuple(record) for record in await driver.fetch(statement.sql, *statement.params)]
                return Ran(len(rows), rows)
            status: str = await driver.execute(statement.sql, *statement.params)
            return Ran(int(status.rpartition(" ")[2]))  # e.g. "UPDATE 1"
        await driver.executemany(statement.sql, statement.rows)
        return Ran(len(statement.rows))
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(statement.sql, None, error) from error
