"""`tidings accounts set-rate-limit`: an account's or an application's send rate, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.auth.test_jwt_attacks import PUBLIC_PEM
from tests.cli.test_accounts_cli import created, env, shown, tidings
from tests.conftest import run_async
from tidings.domain.application import Application
from tidings.store import applications as application_store
from tidings.store.database import Database

__all__ = ["env"]  # the fixture, shared with the other accounts commands' tests


def application_rate(database_url: str, application_id: str) -> float | None:
    async def read() -> float | None:
        database = Database(database_url)
        try:
            async with database.read() as conn:
                found = await application_store.get_application(conn, application_id, account_id=None)
        finally:
            await database.dispose()
        assert found is not None
        return found.messages_per_second

    return run_async(read)


def test_an_account_rate_is_set_shown_and_reset(env: dict[str, str]) -> None:
    api_key = created(env)["api_key"]
    assert shown(env, api_key)["messages_per_second"] is None
    result = tidings(env, "accounts", "set-rate-limit", api_key, "--messages-per-second", "12.5")
    assert result.exit_code == 0, result.output
    assert "12.5/s" in result.stdout
    assert shown(env, api_key)["messages_per_second"] == 12.5
    assert "sends 12.5/s" in tidings(env, "accounts", "show", api_key).stdout
    assert tidings(env, "accounts", "set-rate-limit", api_key, "--default").exit_code == 0
    assert shown(env, api_key)["messages_per_second"] is None


def test_refusals(env: dict[str, str]) -> None:
    api_key = created(env)["api_key"]
    unknown = tidings(env, "accounts", "set-rate-limit", "nobody", "--messages-per-second", "1")
    assert unknown.exit_code == 1 and "no account nobody" in unknown.output
    negative = tidings(env, "accounts", "set-rate-limit", api_key, "--messages-per-second", "-1")
    assert negative.exit_code == 2
    both = tidings(env, "accounts", "set-rate-limit", api_key, "--messages-per-second", "1", "--default")
    assert both.exit_code != 0
    no_app = tidings(
        env, "accounts", "set-rate-limit", api_key, "--messages-per-second", "1", "--app-id", "x"
    )
    assert no_app.exit_code == 1 and "no application x" in no_app.output
    assert shown(env, api_key)["messages_per_second"] is None


def test_an_application_rate_is_set_within_its_account(env: dict[str, str], database_url: str) -> None:
    owner, stranger = created(env)["api_key"], created(env)["api_key"]
    application_id = run_async(lambda: _insert_application(database_url, owner, PUBLIC_PEM))
    foreign = tidings(
        env, "accounts", "set-rate-limit", stranger, "--messages-per-second", "3", "--app-id", application_id
    )
    assert foreign.exit_code == 1
    assert application_rate(database_url, application_id) is None
    own = tidings(
        env, "accounts", "set-rate-limit", owner, "--messages-per-second", "3", "--app-id", application_id
    )
    assert own.exit_code == 0, own.output
    assert application_rate(database_url, application_id) == 3.0


async def _insert_application(database_url: str, api_key: str, public_pem: str) -> str:
    now = datetime.now(UTC)
    application = Application(str(uuid.uuid4()), api_key, "cli", public_pem, {}, now, now)
    database = Database(database_url)
    try:
        async with database.begin() as conn:
            await application_store.insert_application(conn, application)
    finally:
        await database.dispose()
    return application.id
