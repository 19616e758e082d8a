"""The `tidings` command."""

from __future__ import annotations

import typer

from tidings.cli import accounts, db, serve

app = typer.Typer(
    help="Tidings: a self-hostable messaging gateway that speaks the Vonage Messages API.",
    no_args_is_help=True,
)
app.command("serve")(serve.serve)
app.add_typer(accounts.app, name="accounts")
app.add_typer(db.app, name="db")


def run() -> None:
    app()
