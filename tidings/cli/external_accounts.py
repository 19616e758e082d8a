"""`tidings external-accounts`: an account's addresses on WhatsApp, Messenger, Viber and RCS."""

from __future__ import annotations

import json

import typer

from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.errors import TidingsError
from tidings.domain.external_account import ExternalAccount
from tidings.domain.message import Channel
from tidings.services.external_accounts import ExternalAccounts
from tidings.store.database import Database

app = typer.Typer(
    help="Platform addresses (pages, services, agents) and the accounts that hold them.", no_args_is_help=True
)


def _record(linked: ExternalAccount) -> dict[str, str | None]:
    return {
        "channel": linked.channel.value,
        "external_id": linked.external_id,
        "account": linked.account_id,
        "application_id": linked.application_id,
        "name": linked.name,
    }


@app.command("link")
def link(
    channel: Channel = typer.Option(..., help="whatsapp, messenger, viber_service or rcs."),
    external_id: str = typer.Option(
        ..., "--id", help="The business number, page id, service id or agent id."
    ),
    account: str = typer.Option(..., "--account", help="API key of the account that holds it."),
    app_id: str | None = typer.Option(None, "--app-id", help="The application its inbound messages go to."),
    name: str | None = typer.Option(None, help="A name to know it by."),
) -> None:
    """Link a platform address to an account (and an application), so its inbound messages route."""

    async def work(database: Database, _settings: Settings) -> ExternalAccount:
        return await ExternalAccounts(database).link(
            account, channel, external_id, application_id=app_id, name=name
        )

    try:
        linked = with_database(work)
    except TidingsError as error:
        typer.echo(f"cannot link {external_id}: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(_record(linked)))


@app.command("unlink")
def unlink(
    channel: Channel = typer.Option(...),
    external_id: str = typer.Option(..., "--id"),
) -> None:
    async def work(database: Database, _settings: Settings) -> bool:
        return await ExternalAccounts(database).unlink(channel, external_id)

    if not with_database(work):
        typer.echo(f"no {channel.value} external account {external_id}", err=True)
        raise typer.Exit(1)


@app.command("list")
def list_linked(account: str | None = typer.Option(None, "--account", help="Only this account's.")) -> None:
    async def work(database: Database, _settings: Settings) -> list[ExternalAccount]:
        return await ExternalAccounts(database).list(account)

    for linked in with_database(work):
        typer.echo(json.dumps(_record(linked)))
