"""`tidings db upgrade` on a machine where Tidings has never run."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import run_async
from tidings.cli.main import app
from tidings.store import migrate
from tidings.store.database import Database


def test_upgrade_creates_the_embedded_database_in_a_home_that_does_not_exist_yet(tmp_path: Path) -> None:
    home = tmp_path / "not-yet" / "tidings-data"
    result = CliRunner().invoke(
        app, ["db", "upgrade"], env={"TIDINGS_HOME": str(home), "TIDINGS_DATABASE_URL": ""}
    )
    assert result.exit_code == 0, result.output
    database_file = home / "tidings.db"
    assert database_file.is_file()

    async def current() -> bool:
        database = Database(f"sqlite+aiosqlite:///{database_file}")
        try:
            return await migrate.is_current(database)
        finally:
            await database.dispose()

    assert run_async(current)
