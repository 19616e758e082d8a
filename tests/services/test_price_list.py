"""The operator's price list: loading with --replace swaps the whole list in one transaction."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from tidings.domain.pricing import PriceEntry
from tidings.services import price_list
from tidings.store.database import Database


def entry(channel: str, prefix: str, price: str) -> PriceEntry:
    return PriceEntry(channel=channel, prefix=prefix, price=Decimal(price), currency="EUR")


def prices(entries: list[PriceEntry]) -> list[tuple[str, str, Decimal]]:
    return [(e.channel, e.prefix, e.price) for e in entries]


async def test_replace_keeps_only_the_loaded_entries_with_their_new_prices(database: Database) -> None:
    await price_list.load_prices(
        database, [entry("sms", "44", "0.04"), entry("sms", "", "0.01"), entry("mms", "1", "0.2")]
    )
    await price_list.load_prices(
        database, [entry("sms", "44", "0.05"), entry("whatsapp", "", "0.03")], replace=True
    )
    assert prices(await price_list.list_prices(database)) == [
        ("sms", "44", Decimal("0.05")),
        ("whatsapp", "", Decimal("0.03")),
    ]


async def test_load_without_replace_adds_and_updates_and_the_later_duplicate_wins(database: Database) -> None:
    await price_list.set_price(database, entry("sms", "44", "0.04"))
    await price_list.set_price(database, entry("sms", "33", "0.06"))
    await price_list.load_prices(database, [entry("sms", "44", "0.07"), entry("sms", "44", "0.08")])
    assert prices(await price_list.list_prices(database)) == [
        ("sms", "33", Decimal("0.06")),
        ("sms", "44", Decimal("0.08")),
    ]


async def test_a_failed_replace_leaves_the_old_list_whole(database: Database) -> None:
    await price_list.load_prices(database, [entry("sms", "44", "0.04"), entry("sms", "", "0.01")])
    refused = PriceEntry(channel="sms", prefix="1", price=Decimal("0.1"), currency=None)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):  # currency is NOT NULL, on both databases
        await price_list.load_prices(database, [entry("mms", "1", "0.2"), refused], replace=True)
    assert prices(await price_list.list_prices(database)) == [
        ("sms", "", Decimal("0.01")),
        ("sms", "44", Decimal("0.04")),
    ]


async def test_remove_ignores_a_leading_plus_and_says_when_there_was_nothing(database: Database) -> None:
    await price_list.set_price(database, entry("sms", "44", "0.04"))
    assert await price_list.remove_price(database, "sms", "+44")
    assert not await price_list.remove_price(database, "sms", "44")
    assert await price_list.list_prices(database) == []
