"""`tidings prices`: set, list, load and remove the price list, on both databases."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import run_async
from tidings.cli.main import app
from tidings.domain.message import Channel
from tidings.services.pricing import Pricing, default_price
from tidings.store.database import Database

runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_HOME": str(tmp_path / "home")}


def tidings(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def listed(env: dict[str, str]) -> list[dict[str, Any]]:
    result = tidings(env, "prices", "list", "--json")
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def quoted(database_url: str, channel: str, destination: str) -> tuple[Decimal, str]:
    """What a freshly loaded price list (as in an API process) charges."""

    async def quote() -> tuple[Decimal, str]:
        database = Database(database_url)
        try:
            pricing = Pricing(database, default=default_price("EUR", "0.0070"), refresh_seconds=60)
            await pricing.reload()
            entry = pricing.entry_for(channel, destination)
            return entry.price, entry.currency
        finally:
            await database.dispose()

    return run_async(quote)


def test_set_list_and_replace(env: dict[str, str], database_url: str) -> None:
    result = tidings(
        env, "prices", "set", "--channel", "sms", "--prefix", "44", "--price", "0.0400", "--country", "gb"
    )
    assert result.exit_code == 0, result.output
    assert "within 30s" in result.stdout  # the API processes' price refresh
    tidings(
        env, "prices", "set", "--channel", "sms", "--prefix", "+1", "--price", "0.01", "--currency", "usd"
    )

    assert listed(env) == [
        {
            "channel": "sms",
            "prefix": "1",
            "price": "0.010000",
            "currency": "USD",
            "country": None,
            "network_name": None,
        },
        {
            "channel": "sms",
            "prefix": "44",
            "price": "0.040000",
            "currency": "EUR",
            "country": "GB",
            "network_name": None,
        },
    ]
    assert quoted(database_url, "sms", "447700900000") == (Decimal("0.04"), "EUR")

    again = tidings(env, "prices", "set", "--channel", "sms", "--prefix", "44", "--price", "0.05")
    assert again.exit_code == 0
    assert [(e["prefix"], e["price"], e["country"]) for e in listed(env)] == [
        ("1", "0.010000", None),
        ("44", "0.050000", None),
    ]
    assert quoted(database_url, "sms", "447700900000") == (Decimal("0.05"), "EUR")

    text = tidings(env, "prices", "list")
    assert "sms" in text.stdout and "0.050000 EUR" in text.stdout


@pytest.mark.parametrize(
    "options",
    [
        ["--channel", "fax", "--prefix", "44", "--price", "0.1"],
        ["--channel", "sms", "--prefix", "4a", "--price", "0.1"],
        ["--channel", "sms", "--prefix", "1" * 16, "--price", "0.1"],
        ["--channel", "sms", "--prefix", "44", "--price", "cheap"],
        ["--channel", "sms", "--prefix", "44", "--price", "-0.1"],
        ["--channel", "sms", "--prefix", "44", "--price", "0.0000001"],
        ["--channel", "sms", "--prefix", "44", "--price", "0.1", "--currency", "EURO"],
        ["--channel", "sms", "--prefix", "44", "--price", "0.1", "--country", "GBR"],
    ],
)
def test_set_refuses_bad_values(env: dict[str, str], options: list[str]) -> None:
    result = tidings(env, "prices", "set", *options)
    assert result.exit_code == 2, result.output
    assert listed(env) == []


def test_load_from_a_file_and_replace(env: dict[str, str], tmp_path: Path, database_url: str) -> None:
    tidings(env, "prices", "set", "--channel", "mms", "--prefix", "1", "--price", "0.02")
    file = tmp_path / "prices.json"
    file.write_text(
        json.dumps(
            [
                {"channel": "sms", "prefix": "44", "price": "0.0400", "country": "GB"},
                {
                    "channel": "sms",
                    "prefix": "447700",
                    "price": 0.05,
                    "currency": "EUR",
                    "network_name": "Test",
                },
                {"channel": "whatsapp", "prefix": "", "price": "0.03"},
            ]
        )
    )

    loaded = tidings(env, "prices", "load", str(file))
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 3 prices" in loaded.stdout
    assert [(e["channel"], e["prefix"]) for e in listed(env)] == [
        ("mms", "1"),
        ("sms", "44"),
        ("sms", "447700"),
        ("whatsapp", ""),
    ]
    assert quoted(database_url, "whatsapp", "33612345678") == (Decimal("0.03"), "EUR")

    # What `list --json` prints loads back; --replace drops what the file does not name.
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps([e for e in listed(env) if e["channel"] == "sms"]))
    replaced = tidings(env, "prices", "load", "--replace", str(exported))
    assert replaced.exit_code == 0, replaced.output
    assert [(e["channel"], e["prefix"], e["network_name"]) for e in listed(env)] == [
        ("sms", "44", None),
        ("sms", "447700", "Test"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"channel": "sms"}),
        json.dumps([{"channel": "sms", "prefix": "44"}]),
        json.dumps(
            [
                {"channel": "sms", "prefix": "44", "price": "0.1"},
                {"channel": "sms", "prefix": 44, "price": "1"},
            ]
        ),
        json.dumps([{"channel": "sms", "prefix": "44", "price": "0.1", "country": 7}]),
        json.dumps(["sms"]),
    ],
)
def test_load_refuses_a_bad_file_and_writes_nothing(
    env: dict[str, str], tmp_path: Path, content: str
) -> None:
    file = tmp_path / "prices.json"
    file.write_text(content)

    result = tidings(env, "prices", "load", str(file))

    assert result.exit_code == 1, result.output
    assert str(file) in result.stderr
    assert listed(env) == []


def test_remove(env: dict[str, str]) -> None:
    tidings(env, "prices", "set", "--channel", "sms", "--prefix", "44", "--price", "0.04")

    assert tidings(env, "prices", "remove", "--channel", "sms", "--prefix", "44").exit_code == 0
    assert listed(env) == []
    missing = tidings(env, "prices", "remove", "--channel", "sms", "--prefix", "44")
    assert missing.exit_code == 1


def test_every_channel_can_be_priced(env: dict[str, str]) -> None:
    for channel in Channel:
        assert (
            tidings(
                env, "prices", "set", "--channel", channel.value, "--prefix", "", "--price", "0.01"
            ).exit_code
            == 0
        )
    assert sorted(e["channel"] for e in listed(env)) == sorted(c.value for c in Channel)
