"""The `tidings` command."""

from __future__ import annotations

import typer

from tidings.cli import accounts, db, external_accounts, numbers, prices, serve, sim, webhooks

app = typer.Typer(
    help="Tidings: a self-hostable messaging gateway that speaks the Vonage Messages API.",
    no_args_is_help=True,
)
app.command("serve")(serve.serve)
app.add_typer(accounts.app, name="accounts")
app.add_typer(prices.app, name="prices")
app.add_typer(db.app, name="db")
app.add_typer(numbers.app, name="numbers")
app.add_typer(sim.app, name="sim")
app.add_typer(external_accounts.app, name="external-accounts")
app.add_typer(webhooks.app, name="webhooks")


def run() -> None:
    app()
