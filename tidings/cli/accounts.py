"""`tidings accounts`: the operator's account commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from tidings.config import Settings
from tidings.runtime import secret_box
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store import accounts as account_store
from tidings.store import migrate
from tidings.store.database import Database

app = typer.Typer(help="Accounts (tenants) and their credentials.", no_args_is_help=True)
T = TypeVar("T")


def _with_database(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    settings = Settings()

    async def run() -> T:
        database = Database(settings.resolved_database_url)
        try:
            if settings.should_auto_migrate:
                await migrate.upgrade(database.url)
            return await work(database, settings)
        finally:
            await database.dispose()

    return asyncio.run(run())


def print_credentials(credentials: NewAccountCredentials, *, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "api_key": credentials.api_key,
                    "api_secret": credentials.api_secret,
                    "signature_secret": credentials.signature_secret,
                }
            )
        )
        return
    typer.echo("Keep these credentials: the API secret and signature secret are not shown again.")
    typer.echo(f"  API key:          {credentials.api_key}")
    typer.echo(f"  API secret:       {credentials.api_secret}")
    typer.echo(f"  Signature secret: {credentials.signature_secret}")


@app.command("create")
def create(
    name: str = typer.Option("account", help="A name for the operator's records."),
    status_url: str | None = typer.Option(None, help="Default status webhook URL."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an account and print its API key, API secret and signature secret."""

    async def work(database: Database, settings: Settings) -> NewAccountCredentials:
        return await create_account(database, secret_box(settings), name=name, status_url=status_url)

    print_credentials(_with_database(work), as_json=as_json)


@app.command("set-status-url")
def set_status_url(
    api_key: str = typer.Argument(..., help="The account's API key."),
    url: str = typer.Argument("", help="Status webhook URL; empty to clear."),
) -> None:
    """Set the account's default status webhook URL (used when a request names none)."""

    async def work(database: Database, _settings: Settings) -> bool:
        async with database.begin() as conn:
            return await account_store.set_status_url(conn, api_key, url or None)

    if not _with_database(work):
        typer.echo(f"no account {api_key}", err=True)
        raise typer.Exit(1)
    typer.echo("updated")


@app.command("list")
def list_accounts(as_json: bool = typer.Option(False, "--json")) -> None:
    """List accounts (never their secrets)."""

    async def work(database: Database, _settings: Settings) -> list[dict[str, str | None]]:
        async with database.read() as conn:
            found = await account_store.list_accounts(conn)
        return [
            {"api_key": a.api_key, "name": a.name, "status": a.status.value, "status_url": a.status_url}
            for a in found
        ]

    rows = _with_database(work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['api_key']}  {row['status']:<8}  {row['name']}  {row['status_url'] or ''}")
