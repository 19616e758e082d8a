"""Migration 0008 (done jobs deleted) on SQLite and PostgreSQL: down to 0007 and up again, the
done jobs of the old lifecycle go, open and dead ones keep their ids, and no id is given twice."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from tidings.store import migrate, schema
from tidings.store.database import Database

INSERT = (
    "INSERT INTO jobs (id, kind, payload, state, attempts, run_at, created_at)"
    " VALUES (:id, 'k', '{}', :state, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


async def job_ids(database: Database) -> list[tuple[int, str]]:
    async with database.read() as conn:
        return [tuple(row) for row in await conn.execute(text("SELECT id, state FROM jobs ORDER BY id"))]


async def test_down_to_0007_and_back_up(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.engine.dispose()
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(database_url), "0007")
        async with database.begin() as conn:
            for job_id, state in ((1, "dead"), (2, "pending"), (3, "leased"), (4, "done"), (5, "done")):
                await conn.execute(text(INSERT), {"id": job_id, "state": state})
            if database.dialect == "postgresql":  # as if queued through the sequence
                await conn.execute(text("SELECT setval(pg_get_serial_sequence('jobs', 'id'), 5)"))
        await database.engine.dispose()
        await migrate.upgrade(database_url)
        assert await schema.is_current(database)
        assert await job_ids(database) == [(1, "dead"), (2, "pending"), (3, "leased")]
        async with database.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO jobs (kind, payload, state, attempts, run_at, created_at)"
                    " VALUES ('k', '{}', 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        (newest, _) = (await job_ids(database))[-1]
        assert newest > 5  # not the id of a done job the migration deleted
    finally:
        await database.dispose()
