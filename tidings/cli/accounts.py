"""`tidings accounts`: the operator's account commands."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import typer

from tidings.cli.credentials import print_credentials
from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.account import Account
from tidings.domain.account_settings import Balance
from tidings.runtime import secret_box
from tidings.services import account_settings
from tidings.services.account_settings import AccountOverview, UnknownAccount, UnknownApplication
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.accounts import list_accounts as all_accounts
from tidings.store.database import Database

app = typer.Typer(help="Accounts (tenants) and their credentials.", no_args_is_help=True)
T = TypeVar("T")


@app.command("create")
def create(
    name: str = typer.Option("account", help="A name for the operator's records."),
    status_url: str | None = typer.Option(None, help="Default status webhook URL."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an account and print its API key, API secret and signature secret."""

    async def work(database: Database, settings: Settings) -> NewAccountCredentials:
        return await create_account(database, secret_box(settings), name=name, status_url=status_url)

    print_credentials(with_database(work), as_json=as_json)


@app.command("set-status-url")
def set_status_url(
    api_key: str = typer.Argument(..., help="The account's API key."),
    url: str = typer.Argument("", help="Status webhook URL; empty to clear."),
) -> None:
    """Set the account's default status webhook URL (used when a request names none)."""

    async def work(database: Database, _settings: Settings) -> None:
        await account_settings.set_status_url(database, api_key, url or None)

    _run_on_account(work)
    typer.echo("updated")


@app.command("list")
def list_accounts(as_json: bool = typer.Option(False, "--json")) -> None:
    """List accounts (never their secrets)."""

    async def work(database: Database, _settings: Settings) -> list[Account]:
        return await all_accounts(database)

    rows = [
        {"api_key": a.api_key, "name": a.name, "status": a.status.value, "status_url": a.status_url}
        for a in with_database(work)
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['api_key']}  {row['status']:<8}  {row['name']}  {row['status_url'] or ''}")


# --- money and access (services/account_settings.py) ---------------------------------------


def _amount(value: str, what: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{what} must be a number, e.g. 10.00") from None
    if not amount.is_finite():
        raise typer.BadParameter(f"{what} must be a finite number")
    return amount


def _run_on_account(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Runs `work`, turning an unknown API key or a refused value into a message and exit 1."""
    try:
        return with_database(work)
    except (UnknownAccount, UnknownApplication) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def _cache_note(settings: Settings) -> str:
    return (
        f"running API processes apply this within {settings.auth_cache_seconds:g}s "
        "(their authentication cache)"
    )


@app.command("set-credit")
def set_credit(
    api_key: str = typer.Argument(..., help="The account's API key."),
    credit_limit: str | None = typer.Option(
        None, "--credit-limit", help="How far below zero the balance may go, e.g. 10.00."
    ),
    unlimited: bool = typer.Option(False, "--unlimited", help="Let the balance fall without limit."),
) -> None:
    """Set the credit limit: sends that would take the balance below minus it are refused (402)."""
    if (credit_limit is None) == (not unlimited):
        raise typer.BadParameter("give exactly one of --credit-limit AMOUNT or --unlimited")
    limit = None if unlimited else _amount(credit_limit or "", "--credit-limit")

    async def work(database: Database, settings: Settings) -> str:
        await account_settings.set_credit_limit(database, api_key, limit)
        return _cache_note(settings)

    note = _run_on_account(work)
    typer.echo(f"credit limit of {api_key}: {'unlimited' if limit is None else limit}; {note}")


@app.command("set-rate-limit")
def set_rate_limit(
    api_key: str = typer.Argument(..., help="The account's API key."),
    messages_per_second: float | None = typer.Option(
        None, "--messages-per-second", help="Sends allowed per second; 0 for no limit."
    ),
    use_default: bool = typer.Option(
        False,
        "--default",
        help="Follow the default again (TIDINGS_MESSAGES_PER_SECOND or, with --app-id, "
        "TIDINGS_APPLICATION_MESSAGES_PER_SECOND).",
    ),
    app_id: str | None = typer.Option(
        None, "--app-id", help="Limit this application of the account instead."
    ),
) -> None:
    """Set how many messages per second the account (or one of its applications) may send;
    faster sends are answered 429 with Vonage's Rate Limit Hit body."""
    if (messages_per_second is None) == (not use_default):
        raise typer.BadParameter("give exactly one of --messages-per-second N or --default")

    async def work(database: Database, settings: Settings) -> str:
        await account_settings.set_rate_limit(database, api_key, messages_per_second, application_id=app_id)
        return _cache_note(settings)

    note = _run_on_account(work)
    whose = f"application {app_id} of {api_key}" if app_id else api_key
    if messages_per_second is None:
        limit = "the default"
    else:
        limit = "no limit" if messages_per_second == 0 else f"{messages_per_second:g}/s"
    typer.echo(f"send rate of {whose}: {limit}; {note}")


@app.command("top-up")
def top_up(
    api_key: str = typer.Argument(..., help="The account's API key."),
    amount: str = typer.Argument(..., help="Amount to add to the balance, e.g. 25.00."),
) -> None:
    """Add credit to the account's balance."""
    value = _amount(amount, "AMOUNT")

    async def work(database: Database, _settings: Settings) -> Balance:
        return await account_settings.top_up(database, api_key, value)

    balance = _run_on_account(work)
    typer.echo(f"balance of {api_key}: {balance.value} {balance.currency}")


def _set_enabled(api_key: str, enabled: bool) -> None:
    async def work(database: Database, settings: Settings) -> str:
        await account_settings.set_enabled(database, api_key, enabled)
        return _cache_note(settings)

    note = _run_on_account(work)
    typer.echo(f"{api_key} {'enabled' if enabled else 'disabled'}; {note}")


@app.command("disable")
def disable(api_key: str = typer.Argument(..., help="The account's API key.")) -> None:
    """Refuse every request of the account (its data is kept)."""
    _set_enabled(api_key, False)


@app.command("enable")
def enable(api_key: str = typer.Argument(..., help="The account's API key.")) -> None:
    """Accept the account's requests again."""
    _set_enabled(api_key, True)


@app.command("set-default-sms")
def set_default_sms(
    api_key: str = typer.Argument(..., help="The account's API key."),
    api: account_settings.DefaultSmsApi = typer.Argument(..., help="messages (default) or sms."),
) -> None:
    """Switch the account's default SMS API: `sms` keeps inbound SMS and delivery receipts in the
    SMS API's shapes, sent to the callbacks set with POST /account/settings."""

    async def work(database: Database, _settings: Settings) -> None:
        await account_settings.set_default_sms_api(database, api_key, api)

    _run_on_account(work)
    typer.echo(f"default SMS API of {api_key}: {api.value}")


@app.command("show")
def show(
    api_key: str = typer.Argument(..., help="The account's API key."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show the account's status, balance, credit limit and send rate."""

    async def work(database: Database, _settings: Settings) -> AccountOverview:
        return await account_settings.get_overview(database, api_key)

    overview = _run_on_account(work)
    account, balance = overview.account, overview.balance
    credit_limit = None if account.credit_limit is None else str(account.credit_limit)
    rate = account.messages_per_second
    if as_json:
        found: dict[str, str | bool | float | None] = {
            "api_key": api_key,
            "status": account.status.value,
            "balance": str(balance.value),
            "currency": balance.currency,
            "credit_limit": credit_limit,
            "messages_per_second": rate,
            "auto_reload": balance.auto_reload,
            "default_sms_api": overview.default_sms_api.value,
        }
        typer.echo(json.dumps(found))
        return
    limit = credit_limit if credit_limit is not None else "unlimited"
    sends = "default" if rate is None else ("unlimited" if rate == 0 else f"{rate:g}/s")
    typer.echo(
        f"{api_key}  {account.status.value}  balance {balance.value} {balance.currency}  credit {limit}"
        f"  sends {sends}"
    )
