"""PostgreSQL: the job queue vacuumed by the workers themselves, every few seconds.

Each job leaves dead row versions and index entries behind as it goes from pending to leased to
deleted: at a few hundred messages a second, thousands a second. A claim walks past the dead
entries of the indexes it reads until VACUUM removes them, so each claim costs more the longer
since the last vacuum: held at 300 messages a second with no vacuum, a worker fell behind within
three minutes. Autovacuum visits a database at most once per `autovacuum_naptime` (a minute by
default), and never where it is turned off. So every process that runs the worker vacuums `jobs`
itself every few seconds. The table holds only the work in hand (done jobs are deleted), so a vacuum
takes about 10 ms (the dead rows of 15,000 jobs, on a two-core machine). SKIP_LOCKED: while
another process vacuums the table, this round is skipped rather than queued behind it. SQLite
needs none of this: it has no dead row versions to walk.
"""

from __future__ import annotations

from sqlalchemy import text

from tidings.store.database import Database

VACUUM_JOBS = text("VACUUM (SKIP_LOCKED) jobs")


async def vacuum_jobs(database: Database) -> None:
    """One vacuum of the queue table, outside any transaction (VACUUM cannot run inside one)."""
    async with database.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(VACUUM_JOBS)
