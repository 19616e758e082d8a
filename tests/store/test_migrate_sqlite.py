"""A migrated SQLite database is left in WAL mode, so processes that then open it together do not
race to switch it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from tidings.store import migrate
from tidings.store.sqlite_connection import configure_sqlite_connection


async def test_a_connection_opens_while_another_process_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as writer:
        assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        writer.execute("BEGIN IMMEDIATE")  # another process, mid-transaction
        writer.execute("INSERT INTO jwt_replays (jti, expires_at) VALUES ('x', '2030-01-01')")
        opened: list[BaseException | None] = []

        def open_one() -> None:
            try:
                with contextlib.closing(sqlite3.connect(path)) as conn:
                    configure_sqlite_connection(conn)
                opened.append(None)
            except BaseException as error:
                opened.append(error)

        thread = threading.Thread(target=open_one)
        thread.start()
        thread.join(timeout=5)
        writer.execute("ROLLBACK")
        thread.join()
    assert opened == [None]
