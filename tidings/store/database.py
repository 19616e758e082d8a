"""The engine: SQLite (embedded default) or PostgreSQL, behind one async interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings import compact_json
from tidings.store.sqlite_connection import configure_sqlite_connection
from tidings.store.write_priority import WritePriority

# How long a background write holds back for pending accepts, at most. Longer on SQLite: there
# a background transaction holds the one write lock across several event-loop turns, and every
# accept waits it out.
BACKGROUND_MAX_WAIT_SECONDS = {"sqlite": 0.25, "postgresql": 0.05}
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0


def make_sqlite_directory(url: str) -> None:
    """SQLite creates the database file but not the folder it goes in (TIDINGS_HOME, at first)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._priority: WritePriority | None = None
        # Bursts beyond the pool get up to half as many again, closed once returned.
        kwargs: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": pool_size // 2,
            "json_serializer": compact_json.dumps_text,
            "json_deserializer": compact_json.loads,
        }
        if self.is_sqlite:
            make_sqlite_directory(url)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
            # A database host that drops packets (rather than refusing) would hold each new
            # connection, and the request waiting for it, for asyncpg's default of a minute.
            kwargs["connect_args"] = {"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # Reads on SQLite get engines of their own whose transactions start deferred, so that a
        # read never holds the write lock; on PostgreSQL one engine serves both.
        self.read_engine: AsyncEngine = create_async_engine(url, **kwargs) if self.is_sqlite else self.engine
        if self.is_sqlite:
            _configure_sqlite(self.engine, immediate=True)
            _configure_sqlite(self.read_engine, immediate=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def writing(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Held around every write transaction of this process: `urgent` ones (accepting messages,
        a client is waiting) go ahead of background ones (see write_priority.py)."""
        priority = self._write_priority()
        async with priority.urgent() if urgent else priority.background():
            yield

    def urgent_demand(self) -> AbstractContextManager[None]:
        """Held while a client waits for a write: a send from its arrival, and every queued write."""
        return self._write_priority().demand()

    def _write_priority(self) -> WritePriority:
        # Made on first use, inside the event loop that serves this process.
        if self._priority is None:
            self._priority = WritePriority(
                one_writer=self.is_sqlite, max_wait=BACKGROUND_MAX_WAIT_SECONDS[self.dialect]
            )
        return self._priority

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.writing(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading only; it never takes SQLite's write lock."""
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite_connection(dbapi_connection)

    # BEGIN IMMEDIATE takes the write lock up front so that two processes never deadlock upgrading
    # a read lock (SQLite's "database is locked" without waiting). A connection in autocommit (the
    # worker's lookups, store/lookups.py) gets none: each of its statements is a transaction of its
    # own, and a BEGIN here would open one that nothing ever ends.
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
