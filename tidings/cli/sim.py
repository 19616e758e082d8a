"""`tidings sim`: drive the built-in carrier simulator as the network would."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from tidings.channels.simulator.mapping import SIMULATED_NETWORK_CODE
from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.message import Channel
from tidings.services.inbound import InboundArrival, InboundReceiver, Received, Unroutable
from tidings.store.database import Database

app = typer.Typer(help="The carrier simulator.", no_args_is_help=True)


@app.command("inbound")
def inbound(
    sender: str = typer.Option(..., "--from", help="The handset's number, e.g. 447700900123."),
    to: str = typer.Option(..., "--to", help="A rented number."),
    text: str = typer.Option(..., help="The message text."),
    network_code: str = typer.Option(SIMULATED_NETWORK_CODE, help="The sender's network (MCC+MNC)."),
) -> None:
    """Deliver an SMS to a rented number, for whichever account rents it. A running worker sends
    its webhook; a number nobody rents is kept as unroutable (exit status 1)."""
    arrival = InboundArrival(
        channel=Channel.SMS,
        sender=sender.removeprefix("+"),
        to=to.removeprefix("+"),
        text=text,
        network_code=network_code,
    )

    async def work(database: Database, settings: Settings) -> Received | Unroutable:
        receiver = InboundReceiver(database, webhook_max_attempts=settings.webhook_max_attempts)
        return await receiver.receive(arrival, now=datetime.now(UTC))

    outcome = with_database(work)
    if isinstance(outcome, Unroutable):
        typer.echo(f"unroutable: {outcome.reason}; kept as {outcome.id}", err=True)
        raise typer.Exit(1)
    target = outcome.route.shape.value if outcome.route.url else "no webhook configured"
    typer.echo(f"{outcome.message_uuid}  ({target})")
