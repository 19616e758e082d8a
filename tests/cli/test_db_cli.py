"""`tidings db upgrade` on a machine where Tidings has never run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from typer.testing import CliRunner

from tests.conftest import run_async
from tidings.cli.main import app
from tidings.store import schema
from tidings.store.database import Database
from tidings.store.tables import messages


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
            return await schema.is_current(database)
        finally:
            await database.dispose()

    assert run_async(current)


def test_purge_deletes_messages_past_the_given_retention_and_reports_it(tmp_path: Path) -> None:
    env = {"TIDINGS_HOME": str(tmp_path / "home"), "TIDINGS_DATABASE_URL": ""}
    created = CliRunner().invoke(app, ["accounts", "create", "--json", "--name", "cli"], env=env)
    assert created.exit_code == 0, created.output
    api_key = json.loads(created.stdout)["api_key"]
    now = datetime.now(UTC)

    async def store(uuid: str, age: timedelta) -> None:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'home' / 'tidings.db'}")
        try:
            async with database.begin() as conn:
                await conn.execute(
                    insert(messages).values(
                        uuid=uuid,
                        account_id=api_key,
                        direction="outbound",
                        channel="sms",
                        message_type="text",
                        to_address="447700900000",
                        from_address="Acme",
                        content={},
                        options={},
                        status="delivered",
                        created_at=now - age,
                        updated_at=now - age,
                    )
                )
        finally:
            await database.dispose()

    run_async(lambda: store("old", timedelta(days=10)))
    run_async(lambda: store("young", timedelta(days=6)))
    result = CliRunner().invoke(app, ["db", "purge", "--retention-days", "7"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"] == 1
    forever = CliRunner().invoke(app, ["db", "purge", "--retention-days", "0"], env=env)
    assert json.loads(forever.stdout)["messages"] == 0
    shorter = CliRunner().invoke(app, ["db", "purge", "--retention-days", "5"], env=env)
    assert json.loads(shorter.stdout)["messages"] == 1  # the young one, kept until now
