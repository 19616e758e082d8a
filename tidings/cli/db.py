"""`tidings db`: schema migrations."""

from __future__ import annotations

import asyncio

import typer

from tidings.config import Settings
from tidings.store import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (the newest by default)."""
    settings = Settings()
    asyncio.run(migrate.upgrade(settings.resolved_database_url, revision))
    typer.echo(f"database at {revision}")
