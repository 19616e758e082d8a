"""`tidings numbers`: the operator provisions numbers for accounts and lists them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TypeVar

import typer

from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.errors import NumberActionFailed
from tidings.domain.number import NumberType, OwnedNumber, parse_features
from tidings.services.numbers import NumbersService
from tidings.store.database import Database
from tidings.wire.numbers import owned_number_body

app = typer.Typer(help="Virtual numbers and the accounts that rent them.", no_args_is_help=True)
T = TypeVar("T")


def number_record(number: OwnedNumber) -> dict[str, object]:
    return {"account": number.account_id, **owned_number_body(number)}


@app.command("add")
def add(
    account: str = typer.Option(..., "--account", help="API key of the account that rents it."),
    country: str = typer.Option(..., help="ISO 3166-1 alpha-2 country code, e.g. GB."),
    msisdn: str = typer.Option(..., help="The number in E.164 format, e.g. 447700900001."),
    app_id: str | None = typer.Option(None, "--app-id", help="Link it to this application."),
    features: str | None = typer.Option(None, help="Comma-separated: SMS, MMS, VOICE."),
    number_type: NumberType | None = typer.Option(None, "--type", help="Inferred from the number if unset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Give an account a number, any number of the country (not only the simulator's pool)."""
    try:
        wanted = parse_features(features) if features else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--features") from None

    async def work(database: Database, _settings: Settings) -> OwnedNumber:
        return await NumbersService(database).add(
            account,
            country,
            msisdn,
            now=datetime.now(UTC),
            number_type=number_type,
            features=wanted,
            app_id=app_id,
        )

    try:
        number = with_database(work)
    except NumberActionFailed as error:
        typer.echo(f"cannot add {msisdn}: {error.detail}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(number_record(number)))
        return
    typer.echo(
        f"added {number.msisdn} ({number.country}, {number.type.value}) to account {number.account_id}"
    )


@app.command("list")
def list_numbers(
    account: str | None = typer.Option(None, "--account", help="Only this account's numbers."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """List rented numbers, every account's unless --account is given."""

    async def work(database: Database, _settings: Settings) -> list[OwnedNumber]:
        return await NumbersService(database).list_all(account)

    found = with_database(work)
    if as_json:
        typer.echo(json.dumps([number_record(number) for number in found]))
        return
    for number in found:
        features = ",".join(feature.value for feature in number.features)
        typer.echo(
            f"{number.msisdn:<16} {number.country}  {number.type.value:<18} {features:<14} "
            f"{number.account_id}  {number.app_id or ''}"
        )
