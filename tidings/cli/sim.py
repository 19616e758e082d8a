"""`tidings sim`: drive the built-in carrier simulator as the network would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import typer

from tidings.channels.simulator.scenarios import SIMULATED_NETWORK_CODE
from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.domain.channel_registry import CHANNELS, channel_spec
from tidings.domain.content import Text
from tidings.domain.inbound import InboundArrival, Received, Unroutable
from tidings.domain.message import Channel, MessageType
from tidings.services.inbound import InboundReceiver
from tidings.store.database import Database

app = typer.Typer(help="The carrier simulator.", no_args_is_help=True)


@app.command("inbound")
def inbound(
    sender: str = typer.Option(..., "--from", help="The user's number or id, e.g. 447700900123."),
    to: str = typer.Option(..., "--to", help="A rented number, or an external account's id."),
    text: str = typer.Option(..., help="The message text."),
    channel: str = typer.Option("sms", help=f"One of: {', '.join(c.value for c in CHANNELS)}."),
    network_code: str = typer.Option(
        SIMULATED_NETWORK_CODE, help="The sender's network (MCC+MNC), where it has one."
    ),
) -> None:
    """Deliver a text to one of your addresses, for whichever account holds it. A running worker
    sends its webhook; an address nobody holds is kept as unroutable (exit status 1)."""
    spec = channel_spec(Channel(channel)) if channel in {c.value for c in CHANNELS} else None
    if spec is None:
        raise typer.BadParameter(f"unknown channel {channel!r}", param_hint="--channel")
    arrival = InboundArrival(
        connector="simulator",
        channel=spec.channel,
        sender=sender.removeprefix("+"),
        to=to.removeprefix("+"),
        message_type=MessageType.TEXT,
        content=Text(text),
        received_at=datetime.now(UTC),
        provider_ref=uuid.uuid4().hex,
        network_code=network_code if spec.carrier_network else None,
    )

    async def work(database: Database, _settings: Settings) -> Received | Unroutable:
        return await InboundReceiver().receive_alone(database, arrival)

    outcome = with_database(work)
    if isinstance(outcome, Unroutable):
        typer.echo(f"unroutable: {outcome.reason}; kept as {outcome.id}", err=True)
        raise typer.Exit(1)
    target = outcome.route.shape.value if outcome.route.url else "no webhook configured"
    typer.echo(f"{outcome.message_uuid}  ({target})")
