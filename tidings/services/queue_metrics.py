"""The queue's depth and age as Prometheus gauges, read from the database when scraped.

The numbers are the database's, so every process reports the same queue whichever is scraped.
A scrape runs one grouped query; answers are reused for `max_age_seconds` so that several
scrapers (or a dashboard refreshing every second) cost one query between them.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tidings.metrics import QUEUE_JOBS, QUEUE_OLDEST_DUE_SECONDS
from tidings.store.database import Database
from tidings.store.queue_stats import WAITING_STATES, queue_counts


class QueueGauges:
    def __init__(self, database: Database, *, max_age_seconds: float = 5.0) -> None:
        self._database = database
        self._max_age = max_age_seconds
        self._read_at: float | None = None
        self._reading = asyncio.Lock()
        self._kinds: set[str] = set()  # every kind seen: one that empties is reported as 0

    async def refresh(self) -> None:
        async with self._reading:
            if self._read_at is not None and time.monotonic() - self._read_at < self._max_age:
                return
            now = datetime.now(UTC)
            async with self._database.read() as conn:
                counts = await queue_counts(conn, now)
            self._read_at = time.monotonic()
        self._kinds.update(count.kind for count in counts)
        jobs = {(count.kind, count.state): count.jobs for count in counts}
        oldest = {count.kind: count.oldest_due for count in counts if count.oldest_due is not None}
        for kind in self._kinds:
            for state in WAITING_STATES:
                QUEUE_JOBS.labels(kind, state).set(jobs.get((kind, state), 0))
            due = oldest.get(kind)
            QUEUE_OLDEST_DUE_SECONDS.labels(kind).set(max(0.0, (now - due).total_seconds()) if due else 0)
