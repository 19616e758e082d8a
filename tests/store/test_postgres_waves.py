"""The worker's programs run in waves on PostgreSQL end as running them one after another would."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import PG_ADMIN_DSN
from tidings.store.postgres_waves import run_alone, run_programs
from tidings.store.statements import CreditRunsShort, Execute, Rows, Statement, execute_all_async

BUMP = "UPDATE counters SET n = n + 1 WHERE id = $1 AND n = $2"
NOTE = "INSERT INTO notes (program, step) VALUES ($1, $2)"
READ = "UPDATE counters SET n = n WHERE id = $1 RETURNING id, n"
SET = "UPDATE counters SET n = $2 WHERE id = $1"


@pytest.fixture
async def driver() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    await conn.execute("CREATE TEMP TABLE counters (id integer PRIMARY KEY, n integer NOT NULL)")
    await conn.execute("CREATE TEMP TABLE notes (program integer, step integer, UNIQUE (program, step))")
    await conn.execute("INSERT INTO counters SELECT i, i % 3 FROM generate_series(0, 99) AS i")
    try:
        yield conn
    finally:
        await conn.close()


def _program(number: int, chooser: random.Random) -> list[Statement]:
    """Guarded bumps of the program's own counter, notes, reads and plain sets, nested guards.
    A guard skips at most the rest of its own program, as the worker's guards do (writes.guarded)."""
    kinds = [chooser.choice(["bump", "note", "read", "set"]) for _ in range(chooser.randint(1, 7))]
    statements: list[Statement] = []
    for step, kind in enumerate(kinds):
        if kind == "bump":
            skip = chooser.randint(0, len(kinds) - step - 1)
            statements.append(Execute(BUMP, (number, chooser.randint(0, 3)), skip_if_unchanged=skip))
        elif kind == "note":
            statements.append(Execute(NOTE, (number, step)))
        elif kind == "read":
            statements.append(Execute(READ, (number,), returning=True))
        else:
            statements.append(Execute(SET, (number, chooser.randint(0, 3))))
    return statements


async def _state(driver: asyncpg.Connection) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    counters = [tuple(r) for r in await driver.fetch("SELECT id, n FROM counters ORDER BY id")]
    notes = [tuple(r) for r in await driver.fetch("SELECT program, step FROM notes ORDER BY program, step")]
    return counters, notes  # type: ignore[return-value]


async def _one_by_one(driver: asyncpg.Connection, programs: list[list[Statement]]) -> list[Rows]:
    return await execute_all_async(
        [statement for program in programs for statement in program], lambda s: run_alone(driver, s)
    )


@pytest.mark.parametrize("seed", range(6))
async def test_waves_end_as_one_by_one_does(driver: asyncpg.Connection, seed: int) -> None:
    chooser = random.Random(seed)
    programs = [_program(number, chooser) for number in range(60)]
    transaction = driver.transaction()
    await transaction.start()
    expected_rows = await _one_by_one(driver, programs)
    expected = await _state(driver)
    await transaction.rollback()

    async with driver.transaction():
        rows = await run_programs(driver, programs)
        assert await _state(driver) == expected
    assert rows == expected_rows
    assert any(rows) and any(not r for r in rows)  # reads ran and reads were skipped


async def test_a_guard_that_changes_nothing_skips_its_group_only(driver: asyncpg.Connection) -> None:
    programs: list[list[Statement]] = [
        [Execute(BUMP, (1, 99), skip_if_unchanged=1), Execute(NOTE, (1, 1)), Execute(NOTE, (1, 2))],
        [Execute(BUMP, (2, 2), skip_if_unchanged=1), Execute(NOTE, (2, 1))],
    ]
    async with driver.transaction():
        await run_programs(driver, programs)
        notes = await driver.fetch("SELECT program, step FROM notes ORDER BY program, step")
    assert [tuple(note) for note in notes] == [(1, 2), (2, 1)]


async def test_a_debit_guard_that_changes_nothing_raises_credit_runs_short(
    driver: asyncpg.Connection,
) -> None:
    programs: list[list[Statement]] = [
        [Execute(NOTE, (5, 1))],
        [Execute(BUMP, (6, 99), guarded_account="acct"), Execute(NOTE, (6, 1))],
    ]
    transaction = driver.transaction()
    await transaction.start()
    with pytest.raises(CreditRunsShort) as short:
        await run_programs(driver, programs)
    await transaction.rollback()
    assert short.value.account_id == "acct"


async def test_a_duplicate_row_raises_an_integrity_error(driver: asyncpg.Connection) -> None:
    programs: list[list[Statement]] = [[Execute(NOTE, (7, 1))], [Execute(NOTE, (7, 1))]]
    transaction = driver.transaction()
    await transaction.start()
    with pytest.raises(IntegrityError):
        await run_programs(driver, programs)
    await transaction.rollback()
