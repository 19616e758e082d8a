"""The `tidings` command.

A subcommand's module is imported when that subcommand runs, not to list it: `tidings serve`
brings in the whole application (a second or more of imports), which `tidings --help` should
not wait for. Each module's summary is therefore written here too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class Subcommand:
    module: str  # holds `app`, a typer.Typer
    summary: str
    group: bool = True  # a group of commands (`tidings accounts list`), or one (`tidings serve`)


SUBCOMMANDS = {
    "serve": Subcommand("tidings.cli.serve", "Run Tidings: the API, the worker, or both.", group=False),
    "accounts": Subcommand("tidings.cli.accounts", "Accounts (tenants) and their credentials."),
    "prices": Subcommand(
        "tidings.cli.prices", "The price list: what each message costs, by channel and prefix."
    ),
    "db": Subcommand("tidings.cli.db", "Database schema."),
    "numbers": Subcommand("tidings.cli.numbers", "Virtual numbers and the accounts that rent them."),
    "sim": Subcommand("tidings.cli.sim", "The carrier simulator."),
    "external-accounts": Subcommand(
        "tidings.cli.external_accounts",
        "Platform addresses (pages, services, agents) and the accounts that hold them.",
    ),
    "webhooks": Subcommand("tidings.cli.webhooks", "Receive Tidings' webhooks locally."),
}


class LazySubcommands(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        subcommand = SUBCOMMANDS.get(name)
        if subcommand is None:
            return None
        typer_app = importlib.import_module(subcommand.module).app
        command = typer.main.get_group(typer_app) if subcommand.group else typer.main.get_command(typer_app)
        command.name = name
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # Listed from the summaries above: asking each command for its help would import them all.
        with formatter.section("Commands"):
            formatter.write_dl([(name, subcommand.summary) for name, subcommand in SUBCOMMANDS.items()])


app = typer.Typer(
    cls=LazySubcommands,
    rich_markup_mode=None,  # plain help, which lists subcommands through format_commands
    help="Tidings: a self-hostable messaging gateway that speaks the Vonage Messages API.",
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """Tidings: a self-hostable messaging gateway that speaks the Vonage Messages API."""


def run() -> None:
    app()
