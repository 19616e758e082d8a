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

Only the table's owner, the database's or a superuser may vacuum it, and PostgreSQL answers
anyone else with a warning, not an error: a worker connecting as another user would vacuum
nothing and never know. So a worker asks first, and says once, loudly, why its queue will slow
down.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from tidings.store.database import Database

log = logging.getLogger("tidings.store")

VACUUM_JOBS = text("VACUUM (SKIP_LOCKED) jobs")
# Whether this connection's user may vacuum `jobs`: as its owner or the database's (or a member
# of either role), or as a superuser, for whom pg_has_role is always true.
_MAY_VACUUM = text(
    "SELECT current_user, pg_get_userbyid(relowner), "
    "pg_has_role(current_user, relowner, 'USAGE') OR pg_has_role(current_user, "
    "(SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') "
    "FROM pg_class WHERE oid = 'jobs'::regclass"
)


async def may_vacuum_jobs(database: Database) -> bool:
    """Whether this process's database user may vacuum the queue; if not, says so in the log."""
    async with database.read() as conn:
        user, owner, allowed = (await conn.execute(_MAY_VACUUM)).one()
    if not allowed:
        log.warning(
            "the job queue will not be vacuumed by the workers: only the owner of the jobs table "
            "(%s), of the database or a superuser may vacuum it, and the workers connect as %s. "
            "Claims slow down as dead entries pile up between autovacuum's visits; run the "
            "workers as the tables' owner.",
            owner,
            user,
            extra={"table_owner": owner, "database_user": user},
        )
    return bool(allowed)


async def vacuum_jobs(database: Database) -> None:
    """One vacuum of the queue table, outside any transaction (VACUUM cannot run inside one)."""
    async with database.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(VACUUM_JOBS)
