"""Running Alembic from code: `tidings db upgrade`, and serve's migrate-on-start."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from tidings.store.database import make_sqlite_directory
from tidings.store.sqlite_connection import configure_sqlite_connection

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    make_sqlite_directory(url)
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
    await asyncio.to_thread(_leave_sqlite_in_wal_mode, url)


def _leave_sqlite_in_wal_mode(url: str) -> None:
    """WAL is a property of the file, and switching to it needs the file to itself: a connection
    that switches while another holds a write transaction is refused at once ("database is
    locked", SQLite's deadlock avoidance), as when processes start together on a new database.
    Switched here, once, every later connection finds it done."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    with contextlib.closing(sqlite3.connect(parsed.database, timeout=30)) as conn:
        configure_sqlite_connection(conn)


def _main() -> int:
    """`python -m tidings.store.migrate upgrade`, the database URL on stdin (store/schema.py)."""
    import sys

    if sys.argv[1:] != ["upgrade"]:
        print("usage: python -m tidings.store.migrate upgrade < url", file=sys.stderr)
        return 2
    asyncio.run(upgrade(sys.stdin.readline().strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
