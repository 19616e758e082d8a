"""`tidings prices`: the operator's price list (per channel and destination prefix).

Running API processes reload the list every `price_refresh_seconds`; a change applies to sends
accepted after that.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import typer

from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.message import Channel
from tidings.domain.pricing import PriceEntry
from tidings.services import price_list
from tidings.store.database import Database

app = typer.Typer(
    help="The price list: what each message costs, by channel and prefix.", no_args_is_help=True
)
T = TypeVar("T")

_CHANNELS = sorted(channel.value for channel in Channel)


def price_entry(
    *,
    channel: str,
    prefix: str,
    price: str,
    currency: str,
    country: str | None = None,
    network_name: str | None = None,
) -> PriceEntry:
    """A validated entry; raises ValueError naming what is wrong."""
    if channel not in _CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(_CHANNELS)}")
    prefix = prefix.removeprefix("+")
    if (prefix and not (prefix.isascii() and prefix.isdigit())) or len(prefix) > 15:
        raise ValueError("prefix must be up to 15 digits (empty: every destination of the channel)")
    try:
        amount = Decimal(price)
    except InvalidOperation:
        raise ValueError(f"price must be a number, not {price!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.000001")):
        raise ValueError("price must be zero or positive, with at most 6 decimals")
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise ValueError("currency must be a three-letter code such as EUR")
    if country is not None and (len(country) != 2 or not country.isascii() or not country.isalpha()):
        raise ValueError("country must be a two-letter code such as GB")
    if network_name is not None and len(network_name) > 100:
        raise ValueError("network name must be at most 100 characters")
    return PriceEntry(
        channel=channel,
        prefix=prefix,
        price=amount,
        currency=currency.upper(),
        country=country.upper() if country else None,
        network_name=network_name or None,
    )


def _entry_json(entry: PriceEntry) -> dict[str, Any]:
    return {
        "channel": entry.channel,
        "prefix": entry.prefix,
        "price": str(entry.price),
        "currency": entry.currency,
        "country": entry.country,
        "network_name": entry.network_name,
    }


def _refresh_note(settings: Settings) -> str:
    return f"running API processes apply it within {settings.price_refresh_seconds:g}s"


@app.command("set")
def set_price(
    channel: str = typer.Option(..., help=f"One of {', '.join(_CHANNELS)}."),
    prefix: str = typer.Option(..., help="Destination prefix (digits); empty for the channel's default."),
    price: str = typer.Option(..., help="Per SMS segment, or per message on other channels."),
    currency: str = typer.Option("EUR", help="Three-letter currency code."),
    country: str | None = typer.Option(
        None, help="Two-letter country (worked out from the prefix if unset)."
    ),
    network_name: str | None = typer.Option(None, help="Network name shown by the pricing API."),
) -> None:
    """Add or replace the price of one channel and prefix."""
    try:
        entry = price_entry(
            channel=channel,
            prefix=prefix,
            price=price,
            currency=currency,
            country=country,
            network_name=network_name,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None

    async def work(database: Database, _settings: Settings) -> None:
        await price_list.set_price(database, entry)

    with_database(work)
    settings = Settings()
    typer.echo(
        f"{entry.channel} {entry.prefix or '(default)'}: {entry.price} {entry.currency}; {_refresh_note(settings)}"
    )


@app.command("remove")
def remove_price(
    channel: str = typer.Option(..., help="The entry's channel."),
    prefix: str = typer.Option(..., help="The entry's prefix."),
) -> None:
    """Remove the price of one channel and prefix."""

    async def work(database: Database, _settings: Settings) -> bool:
        return await price_list.remove_price(database, channel, prefix)

    removed = with_database(work)
    settings = Settings()
    if not removed:
        typer.echo(f"no price for {channel} {prefix}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed; {_refresh_note(settings)}")


@app.command("list")
def list_prices(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List the price list, by channel and prefix."""

    async def work(database: Database, _settings: Settings) -> list[PriceEntry]:
        return await price_list.list_prices(database)

    entries = with_database(work)
    if as_json:
        typer.echo(json.dumps([_entry_json(e) for e in entries]))
        return
    for e in entries:
        extra = "  ".join(x for x in (e.country, e.network_name) if x)
        typer.echo(f"{e.channel:<14} {e.prefix or '(default)':<16} {e.price} {e.currency}  {extra}".rstrip())


@app.command("load")
def load_prices(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A JSON file."),
    replace: bool = typer.Option(False, "--replace", help="Remove every price not in the file."),
) -> None:
    """Load prices from a JSON array of {channel, prefix, price, currency?, country?, network_name?}
    (the shape `prices list --json` prints), all in one transaction."""
    try:
        items = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(items, list):
            raise ValueError("the file must hold a JSON array of price objects")
        entries = [_parse_item(index, item) for index, item in enumerate(items)]
    except (ValueError, UnicodeDecodeError) as error:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(1) from None

    async def work(database: Database, _settings: Settings) -> None:
        await price_list.load_prices(database, entries, replace=replace)

    with_database(work)
    settings = Settings()
    typer.echo(f"loaded {len(entries)} prices; {_refresh_note(settings)}")


def _parse_item(index: int, item: Any) -> PriceEntry:
    if not isinstance(item, dict):
        raise ValueError(f"item {index}: must be an object")
    try:
        return price_entry(
            channel=_text(item, "channel"),
            prefix=_text(item, "prefix"),
            price=str(item["price"]) if isinstance(item.get("price"), str | int | float) else "",
            currency=_text(item, "currency", "EUR"),
            country=_text(item, "country", "") or None,
            network_name=_text(item, "network_name", "") or None,
        )
    except ValueError as error:
        raise ValueError(f"item {index}: {error}") from None


def _text(item: dict[str, Any], name: str, default: str | None = None) -> str:
    value = item.get(name, default)
    if value is None and default is not None:
        value = default
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value
