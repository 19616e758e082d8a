"""The schema's version as a serving process sees it, without loading Alembic.

Alembic and its migration scripts take about 10 MB that a long-running process would keep for
nothing once the schema is current. So a serving process reads the version row itself, compares
it with `HEAD_REVISION` (tests/store/test_schema.py holds it to Alembic's own head), and only when
the schema is behind hands the upgrade to a short-lived `python -m tidings.store.migrate`.
"""

from __future__ import annotations

import asyncio
import re
import sys

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tidings.store.database import Database

HEAD_REVISION = "0008"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failed)\b.*: ")


class MigrationFailed(RuntimeError):
    pass


async def current_revision(database: Database) -> str | None:
    """The revision the database is at; None for a database Alembic has never touched."""
    try:
        async with database.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:
        return None  # no version table yet


async def is_current(database: Database) -> bool:
    return await current_revision(database) == HEAD_REVISION


async def upgrade(database: Database) -> None:
    """Brings the schema to the head; a no-op, in this process, when it is there already."""
    if await is_current(database):
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tidings.store.migrate",
        "upgrade",
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # The URL goes on stdin, not in argv, where `ps` would show its password.
    _, errors = await child.communicate(database.url.encode() + b"\n")
    if child.returncode != 0:
        raise MigrationFailed(f"migrating the database failed: {_cause(errors.decode(errors='replace'))}")


def _cause(traceback: str) -> str:
    """The last exception line of the child's traceback (`module.Error: what`)."""
    causes = [line for line in traceback.splitlines() if _EXCEPTION_LINE.match(line)]
    return causes[-1] if causes else "the migration process failed without saying why"
