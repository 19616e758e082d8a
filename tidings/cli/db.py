"""`tidings db`: schema migrations and purging what is past keeping."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import typer

from tidings.cli.database import with_database
from tidings.config import Settings
from tidings.services.maintenance import Maintenance, Purged
from tidings.store import migrate
from tidings.store.database import Database

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (the newest by default)."""
    settings = Settings()
    asyncio.run(migrate.upgrade(settings.resolved_database_url, revision))
    typer.echo(f"database at {revision}")


@app.command("purge")
def purge(
    retention_days: int | None = typer.Option(
        None,
        "--retention-days",
        min=0,
        help="Delete messages older than this many days (default: TIDINGS_MESSAGE_RETENTION_DAYS; 0 keeps them).",
    ),
) -> None:
    """Delete what is past keeping now: expired keys and JWT ids, old messages.
    Processes that run the worker also do this every few minutes."""

    async def work(database: Database, settings: Settings) -> Purged:
        retention = settings.message_retention
        if retention_days is not None:
            retention = timedelta(days=retention_days) if retention_days else None
        return await Maintenance(database, message_retention=retention).purge()

    purged = with_database(work)
    typer.echo(json.dumps(dataclasses.asdict(purged)))
