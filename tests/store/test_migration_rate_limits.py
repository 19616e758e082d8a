"""Migration 0004 (send rate limits) goes up and down on SQLite and PostgreSQL, keeping the rows."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from tidings.store import migrate, schema
from tidings.store.database import Database


def columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


async def rate_columns(database: Database) -> tuple[bool, bool]:
    async with database.engine.connect() as conn:
        accounts = await conn.run_sync(columns, "accounts")
        applications = await conn.run_sync(columns, "applications")
    return "messages_per_second" in accounts, "messages_per_second" in applications


async def test_down_to_0003_and_back_up(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert await rate_columns(database) == (True, True)
        async with database.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO accounts (api_key, name, status, signature_secret_enc, created_at, "
                    "messages_per_second) VALUES ('k1', 'n', 'active', 'x', CURRENT_TIMESTAMP, 7.5)"
                )
            )
        await database.engine.dispose()
        await asyncio.to_thread(command.downgrade, migrate.alembic_config(database_url), "0003")
        assert await rate_columns(database) == (False, False)
        await database.engine.dispose()
        await migrate.upgrade(database_url)
        assert await schema.is_current(database)
        async with database.read() as conn:
            kept = (await conn.execute(text("SELECT api_key, messages_per_second FROM accounts"))).all()
        assert [tuple(row) for row in kept] == [("k1", None)]  # the account stays; its limit went with 0004
    finally:
        await database.dispose()
