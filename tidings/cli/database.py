"""Running one piece of async database work from a CLI command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tidings.config import Settings
from tidings.store import migrate
from tidings.store.database import Database

T = TypeVar("T")


def with_database(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Opens the configured database (migrating it first where settings say so), runs `work`."""
    settings = Settings()

    async def run() -> T:
        database = Database(settings.resolved_database_url)
        try:
            if settings.should_auto_migrate:
                await migrate.upgrade(database.url)
            return await work(database, settings)
        finally:
            await database.dispose()

    return asyncio.run(run())
