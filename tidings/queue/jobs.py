"""Durable jobs in the database: what a job is, and enqueueing one in the caller's transaction.

Claiming and settling are statements that ride the group commit (store/writes.py). A job is
`pending` until a worker leases it; `leased` until the worker settles it: deletes it when done,
puts it back `pending` for a later attempt, or buries it as `dead` when its kind's attempts are
spent (dead jobs stay, for inspection and replay). A worker that dies leaves a lease that
expires, and the job is claimed again. Jobs sharing an ordering key run one at a time, oldest
first. What each kind of job means, and how it is retried, is declared with its kind (kinds.py).

A done job is deleted rather than kept: nothing reads it again (a message's events and webhook
attempts are its history), and the table stays as small as the work in hand. On PostgreSQL that
matters for speed: every job leaves dead index entries behind as it moves on, which the claim
walks past until VACUUM removes them, and a vacuum of a small table is quick
(store/queue_vacuum.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings import compact_json
from tidings.store.job_signals import NOTIFY_SQL
from tidings.store.tables import jobs

PENDING, LEASED, DEAD = "pending", "leased", "dead"


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    ordering_key: str | None = None
    run_at: datetime | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """A leased job as stored: its payload still the JSON its kind wrote."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    ordering_key: str | None = None


def claimed_jobs(rows: Sequence[Sequence[Any]]) -> list[ClaimedJob]:
    """The jobs a claim leased (the rows its statements return, store/writes.py), by id."""
    claimed = [
        ClaimedJob(
            id=int(row[0]), kind=row[1], payload=_json(row[2]), attempts=int(row[3]), ordering_key=row[4]
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda job: job.id)


def _json(value: Any) -> dict[str, Any]:
    """A JSON column as the driver returns it raw: text (SQLite, asyncpg's json)."""
    decoded: dict[str, Any] = compact_json.loads(value) if isinstance(value, str | bytes) else value
    return decoded


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    jitter: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff with 'equal jitter': half fixed, half random, so retries spread out."""
        # The exponent is bounded so that long schedules (thousands of attempts) cannot overflow a float.
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** min(max(0, attempts - 1), 64)))
        return timedelta(seconds=ceiling / 2 + self.jitter.uniform(0, ceiling / 2))


def job_rows(new_jobs: Sequence[NewJob], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "kind": job.kind,
            "payload": job.payload,
            "state": PENDING,
            "ordering_key": job.ordering_key,
            "attempts": 0,
            "run_at": job.run_at or now,
            "created_at": now,
        }
        for job in new_jobs
    ]


async def enqueue(conn: AsyncConnection, new_jobs: Sequence[NewJob], *, now: datetime) -> None:
    """Queues jobs in the caller's transaction; on PostgreSQL its commit wakes the workers of
    other processes, as the group commit's batches do (job_signals.py)."""
    if new_jobs:
        await conn.execute(insert(jobs), job_rows(new_jobs, now))
        if conn.dialect.name == "postgresql":
            await conn.execute(text(NOTIFY_SQL))


async def leaseholders(conn: AsyncConnection, prefix: str) -> list[str]:
    """The workers whose id starts with `prefix` that hold leases now."""
    rows = await conn.execute(
        select(jobs.c.leased_by).where(jobs.c.state == LEASED, jobs.c.leased_by.startswith(prefix)).distinct()
    )
    return [holder for holder in rows.scalars() if holder]


async def release(conn: AsyncConnection, holders: Sequence[str]) -> int:
    """Gives the jobs these (dead) workers held back to the queue, due now; the attempt they were
    on still counts."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.state == LEASED, jobs.c.leased_by.in_(holders))
        .values(state=PENDING, lease_until=None)
    )
    return result.rowcount


async def release_lost(conn: AsyncConnection, holder: str, running: Sequence[int]) -> int:
    """Gives back the jobs `holder` (a live worker) leased but is not running: those of a claim
    that committed while its answer, with the jobs it leased, was lost. Due now; the attempt still
    counts."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.state == LEASED, jobs.c.leased_by == holder, jobs.c.id.not_in(running))
        .values(state=PENDING, lease_until=None)
    )
    return result.rowcount
