"""How every SQLite connection of Tidings is set up. Standard library only: the SQLite writer
process (sqlite_writer_process.py) uses it too."""

from __future__ import annotations

from typing import Any


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """Transactions begun explicitly, WAL so that readers run beside the writer,
    synchronous=FULL so that a commit survives power loss (what a 202 promises), and a busy
    timeout that arbitrates between processes."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
