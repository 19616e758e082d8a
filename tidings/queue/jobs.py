"""Durable jobs in the database: enqueue in the caller's transaction, claim with a lease, settle.

A job is `pending` until a worker leases it; `leased` until the worker settles it as `done`, puts it
back `pending` for a later attempt, or buries it as `dead` when its kind's attempts are spent. A
worker that dies leaves a lease that expires, and the job is claimed again. Jobs sharing an
ordering key run one at a time, oldest first. What each kind of job means, and how it is retried,
is declared with its kind (kinds.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import jobs

PENDING, LEASED, DONE, DEAD = "pending", "leased", "done", "dead"


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
    if new_jobs:
        await conn.execute(insert(jobs), job_rows(new_jobs, now))


async def claim(
    conn: AsyncConnection, *, worker_id: str, limit: int, now: datetime, lease: timedelta
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs. PostgreSQL skips rows other workers hold; SQLite has one writer.
    Jobs whose worker died (lease run out) come first, then pending jobs in order of due time. Each
    is its own query so that each walks the (state, run_at) index in order and stops at `limit`:
    one query with an OR of both took every pending row and sorted them (25 ms with 80k queued)."""
    earlier = jobs.alias("earlier")
    blocked_by_earlier = exists().where(
        earlier.c.ordering_key == jobs.c.ordering_key,
        earlier.c.id < jobs.c.id,
        earlier.c.state.in_((PENDING, LEASED)),
    )

    def due(condition: Any, order: Any, count: int) -> Any:
        return (
            select(jobs.c.id)
            .where(condition, or_(jobs.c.ordering_key.is_(None), ~blocked_by_earlier))
            .order_by(order, jobs.c.id)
            .limit(count)
            .with_for_update(skip_locked=True)
        )

    expired = due(and_(jobs.c.state == LEASED, jobs.c.lease_until < now), jobs.c.lease_until, limit)
    ids = list((await conn.execute(expired)).scalars())
    if len(ids) < limit:
        pending = due(and_(jobs.c.state == PENDING, jobs.c.run_at <= now), jobs.c.run_at, limit - len(ids))
        ids += (await conn.execute(pending)).scalars()
    if not ids:
        return []
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(ids))
        .values(state=LEASED, lease_until=now + lease, leased_by=worker_id, attempts=jobs.c.attempts + 1)
        .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.attempts, jobs.c.ordering_key)
    )
    claimed = [ClaimedJob(**row) for row in result.mappings()]
    return sorted(claimed, key=lambda job: job.id)


async def purge_finished(conn: AsyncConnection, *, older_than: datetime) -> int:
    """Done jobs are only history; dead ones stay for inspection and replay."""
    result = await conn.execute(delete(jobs).where(jobs.c.state == DONE, jobs.c.finished_at < older_than))
    return result.rowcount
