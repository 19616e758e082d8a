"""How deep the job queue is, per kind, in one grouped query for the metrics endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import jobs

# Dead jobs stay in the table (done ones are deleted); they are not the queue. The partial
# index over open jobs (ordering key, id) serves this filter.
WAITING_STATES = ("pending", "leased")


@dataclass(frozen=True)
class QueueCount:
    kind: str
    state: str
    jobs: int
    oldest_due: datetime | None  # the earliest run time already passed, among pending jobs


async def queue_counts(conn: AsyncConnection, now: datetime) -> list[QueueCount]:
    due_run_at = case((jobs.c.run_at <= now, jobs.c.run_at), else_=None)
    query = (
        select(jobs.c.kind, jobs.c.state, func.count(), func.min(due_run_at))
        .where(jobs.c.state.in_(WAITING_STATES))
        .group_by(jobs.c.kind, jobs.c.state)
    )
    rows = (await conn.execute(query)).all()
    return [
        QueueCount(kind, state, count, oldest if state == "pending" else None)
        for kind, state, count, oldest in rows
    ]
