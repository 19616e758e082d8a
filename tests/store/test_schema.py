"""A serving process reads the schema's version itself and migrates in a child process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from tidings.store import migrate, schema
from tidings.store.database import Database


async def alembic_revision(database: Database) -> str | None:
    """The revision as Alembic itself reads it."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as conn:
        return await conn.run_sync(read)


def test_the_head_a_server_expects_is_alembics_head() -> None:
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert schema.HEAD_REVISION == head


async def test_a_new_database_is_migrated_by_a_child_and_then_left_alone(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        assert await schema.current_revision(database) is None
        before = set(sys.modules)
        await schema.upgrade(database)
        assert await schema.is_current(database)
        assert await alembic_revision(database) == schema.HEAD_REVISION  # Alembic agrees
        assert not any(name.startswith("alembic") for name in set(sys.modules) - before)
        await schema.upgrade(database)  # current: nothing to do
        assert await schema.current_revision(database) == schema.HEAD_REVISION
    finally:
        await database.dispose()


async def test_a_failed_migration_is_an_error_that_names_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database, nor any other" * 100)
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(schema.MigrationFailed, match=r"migrating the database failed: .*not a database"):
            await schema.upgrade(database)
    finally:
        await database.dispose()
