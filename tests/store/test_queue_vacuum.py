"""The workers vacuum the job queue themselves on PostgreSQL (store/queue_vacuum.py), and the
migration has autovacuum visit it on a count of dead rows."""

from __future__ import annotations

import asyncio
import time

import pytest

from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.store.database import Database


async def vacuum_count(database: Database) -> int:
    async with database.read() as conn:
        found = await conn.exec_driver_sql(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'jobs'"
        )
        return int(found.scalar_one())


async def until_vacuumed_after(database: Database, before: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := await vacuum_count(database)) <= before:
        assert time.monotonic() < deadline, "the job queue was not vacuumed"
        await asyncio.sleep(0.05)
    return count


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has no dead row versions to remove
async def test_a_worker_process_vacuums_the_job_queue_every_few_seconds(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"queue_vacuum_seconds": 0.1}), role=Role.WORKER)
    await runtime.start()
    try:
        first = await until_vacuumed_after(runtime.database, await vacuum_count(runtime.database))
        await until_vacuumed_after(runtime.database, first)  # and again: it goes on
    finally:
        await runtime.stop()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_job_queue_is_autovacuumed_on_a_count_of_dead_rows(runtime: Runtime) -> None:
    async with runtime.database.read() as conn:
        found = await conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'jobs'")
        options = dict(option.split("=") for option in found.scalar_one())
    assert options["autovacuum_vacuum_scale_factor"] == "0"
    assert int(options["autovacuum_vacuum_threshold"]) > 0
