"""`tidings accounts` operator commands: credit limit, top-up, disable/enable, on both databases."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import run_async
from tidings.auth.basic import BasicAuthenticator
from tidings.cli.main import app
from tidings.domain.errors import Unauthorized
from tidings.store.accounts import AccountCredentialStore
from tidings.store.database import Database

runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_HOME": str(tmp_path / "home")}


def tidings(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def created(env: dict[str, str]) -> dict[str, str]:
    result = tidings(env, "accounts", "create", "--json", "--name", "cli")
    assert result.exit_code == 0, result.output
    account: dict[str, str] = json.loads(result.stdout)
    return account


def shown(env: dict[str, str], api_key: str) -> dict[str, Any]:
    result = tidings(env, "accounts", "show", api_key, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def authenticates(database_url: str, api_key: str, secret: str) -> bool:
    """A fresh authenticator (as in another process whose cache has expired)."""

    async def check() -> bool:
        database = Database(database_url)
        authenticator = BasicAuthenticator(AccountCredentialStore(database), cache_seconds=0)
        token = base64.b64encode(f"{api_key}:{secret}".encode()).decode()
        try:
            await authenticator.authenticate(f"Basic {token}")
            return True
        except Unauthorized:
            return False
        finally:
            await database.dispose()

    return run_async(check)


def test_set_credit_limit_and_unlimited(env: dict[str, str]) -> None:
    account = created(env)
    assert shown(env, account["api_key"])["credit_limit"] is None

    limited = tidings(env, "accounts", "set-credit", "--credit-limit", "10.00", account["api_key"])
    assert limited.exit_code == 0, limited.output
    assert "within 10s" in limited.stdout  # the API processes' authentication cache
    assert Decimal(shown(env, account["api_key"])["credit_limit"]) == Decimal("10")

    zero = tidings(env, "accounts", "set-credit", "--credit-limit", "0", account["api_key"])
    assert zero.exit_code == 0
    assert Decimal(shown(env, account["api_key"])["credit_limit"]) == 0

    unlimited = tidings(env, "accounts", "set-credit", "--unlimited", account["api_key"])
    assert unlimited.exit_code == 0
    assert shown(env, account["api_key"])["credit_limit"] is None


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--credit-limit", "5", "--unlimited"],
        ["--credit-limit", "ten"],
        ["--credit-limit", "-1"],
        ["--credit-limit", "NaN"],
    ],
    ids=["neither", "both", "not-a-number", "negative", "nan"],
)
def test_set_credit_refuses_bad_options(env: dict[str, str], options: list[str]) -> None:
    account = created(env)
    result = tidings(env, "accounts", "set-credit", *options, account["api_key"])
    assert result.exit_code == 2, result.output
    assert shown(env, account["api_key"])["credit_limit"] is None


def test_top_up_adds_to_the_balance(env: dict[str, str]) -> None:
    account = created(env)

    first = tidings(env, "accounts", "top-up", account["api_key"], "25.50")
    second = tidings(env, "accounts", "top-up", account["api_key"], "0.0070")

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "25.5" in first.stdout
    found = shown(env, account["api_key"])
    assert (Decimal(found["balance"]), found["currency"]) == (Decimal("25.507"), "EUR")


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "Infinity"])
def test_top_up_refuses_what_is_no_credit(env: dict[str, str], amount: str) -> None:
    account = created(env)
    result = tidings(env, "accounts", "top-up", account["api_key"], "--", amount)
    assert result.exit_code == 2, result.output
    assert Decimal(shown(env, account["api_key"])["balance"]) == 0


def test_disable_and_enable(env: dict[str, str], database_url: str) -> None:
    account = created(env)
    other = created(env)
    assert authenticates(database_url, account["api_key"], account["api_secret"])

    disabled = tidings(env, "accounts", "disable", account["api_key"])
    assert disabled.exit_code == 0, disabled.output
    assert "within 10s" in disabled.stdout
    assert shown(env, account["api_key"])["status"] == "disabled"
    assert not authenticates(database_url, account["api_key"], account["api_secret"])
    assert authenticates(database_url, other["api_key"], other["api_secret"])

    enabled = tidings(env, "accounts", "enable", account["api_key"])
    assert enabled.exit_code == 0
    assert shown(env, account["api_key"])["status"] == "active"
    assert authenticates(database_url, account["api_key"], account["api_secret"])


def test_default_sms_api_switch(env: dict[str, str]) -> None:
    account = created(env)
    assert shown(env, account["api_key"])["default_sms_api"] == "messages"

    switched = tidings(env, "accounts", "set-default-sms", account["api_key"], "sms")
    assert switched.exit_code == 0, switched.output
    assert shown(env, account["api_key"])["default_sms_api"] == "sms"
    assert tidings(env, "accounts", "set-default-sms", account["api_key"], "messages").exit_code == 0
    assert shown(env, account["api_key"])["default_sms_api"] == "messages"
    assert tidings(env, "accounts", "set-default-sms", account["api_key"], "voice").exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["set-default-sms", "deadbeef", "sms"],
        ["set-credit", "--credit-limit", "1", "deadbeef"],
        ["set-credit", "--unlimited", "deadbeef"],
        ["top-up", "deadbeef", "1"],
        ["disable", "deadbeef"],
        ["enable", "deadbeef"],
        ["show", "deadbeef"],
    ],
)
def test_unknown_account(env: dict[str, str], args: list[str]) -> None:
    result = tidings(env, "accounts", *args)
    assert result.exit_code == 1
    assert "no account deadbeef" in result.stderr
