"""The workers vacuum the job queue themselves on PostgreSQL (store/queue_vacuum.py), and the
migration has autovacuum visit it on a count of dead rows."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import make_url

from tests.conftest import run_async
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.store import queue_vacuum
from tidings.store.database import Database
from tidings.store.job_signals import asyncpg_dsn


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


@pytest.fixture
def non_owner_url(settings: Settings) -> Iterator[str]:
    """The test database as a user who may use every table but owns none."""
    role = f"tidings_worker_{uuid.uuid4().hex[:8]}"
    database = make_url(settings.database_url).database

    async def admin(*statements: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    run_async(
        lambda: admin(
            f"CREATE ROLE {role} LOGIN",
            f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
        )
    )
    try:
        yield make_url(settings.database_url).set(username=role).render_as_string(hide_password=False)
    finally:
        run_async(lambda: admin(f"DROP OWNED BY {role}", f"DROP ROLE {role}"))


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_worker_that_may_not_vacuum_the_queue_says_why_and_runs_no_vacuum(
    settings: Settings, non_owner_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    owner = Database(settings.database_url)
    non_owner = Database(non_owner_url)
    try:
        assert await queue_vacuum.may_vacuum_jobs(owner)
        assert not caplog.records
        assert not await queue_vacuum.may_vacuum_jobs(non_owner)
        (warning,) = caplog.records
        assert (
            warning.levelno == logging.WARNING and "only the owner of the jobs table" in warning.getMessage()
        )
    finally:
        await owner.dispose()
        await non_owner.dispose()
    caplog.clear()
    runtime = Runtime(
        settings.model_copy(update={"database_url": non_owner_url, "queue_vacuum_seconds": 0.1}),
        role=Role.WORKER,
    )
    await runtime.start()
    try:
        assert "tidings-queue-vacuum" not in {task.get_name() for task in runtime._housekeeping}
        assert any("only the owner of the jobs table" in r.getMessage() for r in caplog.records)
    finally:
        await runtime.stop()
