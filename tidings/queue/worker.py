"""The worker loop: claim due jobs, perform each, record its outcome, settle it.

Performing runs concurrently, up to `concurrency` jobs at once, outside any transaction. Each
job's record and settle then go to the shared transactions (group commit), so a hundred finished
jobs cost one commit, not a hundred; a slow job (a webhook to a slow receiver) holds up nobody
else's commit. Handlers may run more than once for one job (a crash between perform and the
commit), so each kind writes its work to be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.queue import jobs as job_store
from tidings.queue.jobs import ClaimedJob
from tidings.queue.kinds import Bury, Done, Job, JobKind, Outcome, PermanentFailure, Retry, RetryLater
from tidings.store.database import Database
from tidings.store.shared_transactions import SharedTransactions

log = logging.getLogger("tidings.worker")

CLAIM_GATHER_SECONDS = 0.02
AnyKind = JobKind[Any, Any]


def _now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(
        self,
        database: Database,
        kinds: Sequence[AnyKind],
        shared: SharedTransactions,
        *,
        concurrency: int,
        poll_seconds: float,
        lease: timedelta,
    ) -> None:
        self._database = database
        self._kinds = {kind.name: kind for kind in kinds}
        self._shared = shared
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._lease = lease
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that made a job due, so it runs without waiting for the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="tidings-worker")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; give running jobs time to finish. Unfinished ones are claimed again later."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task:
            await self._loop_task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_claim = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            claimed: list[ClaimedJob] = []
            capacity = self._concurrency - len(self._inflight)
            # A claim is a transaction: while most slots are busy, free ones are refilled together
            # (at most CLAIM_GATHER_SECONDS later) rather than one transaction per finished job.
            gathering = loop.time() - last_claim < CLAIM_GATHER_SECONDS and capacity < self._concurrency / 2
            if capacity > 0 and not gathering:
                last_claim = loop.time()
                try:
                    async with self._database.begin() as conn:
                        claimed = await job_store.claim(
                            conn, worker_id=self.worker_id, limit=capacity, now=_now(), lease=self._lease
                        )
                except Exception:
                    log.exception("claiming jobs failed; retrying")
            for row in claimed:
                task = asyncio.create_task(self._execute(row), name=f"job-{row.id}")
                self._inflight.add(task)
                task.add_done_callback(self._finished)
            if len(claimed) < capacity or capacity == 0:
                timeout = CLAIM_GATHER_SECONDS if gathering else self._poll_seconds
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                except TimeoutError:
                    pass

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _execute(self, row: ClaimedJob) -> None:
        kind = self._kinds.get(row.kind)
        if kind is None:
            await self._settle_alone(None, row, Bury(f"no handler for job kind {row.kind!r}"))
            return
        try:
            job: Job[Any] = Job(row.id, row.kind, kind.parse(row.payload), row.attempts)
        except ValidationError as error:
            await self._settle_alone(None, row, Bury(f"the payload does not fit its kind: {error}"))
            return
        if row.attempts > kind.retry.max_attempts:
            await self._settle_alone(kind, row, Bury("attempts exhausted (the job's worker kept dying)"), job)
            return
        try:
            result = await kind.perform(job)
        except asyncio.CancelledError:
            raise
        except RetryLater as retry:
            await self._settle_alone(kind, row, Retry(str(retry), retry.delay), job)
            return
        except PermanentFailure as failure:
            await self._settle_alone(kind, row, Bury(str(failure)), job)
            return
        except Exception as error:
            log.warning("job %s (%s) attempt %s failed: %r", row.id, row.kind, row.attempts, error)
            await self._settle_alone(kind, row, Retry(repr(error)), job)
            return

        async def record(conn: AsyncConnection) -> None:
            outcome = await kind.record(conn, job, result)
            await self._settle(conn, kind, row, outcome, job)

        try:
            await self._shared.run(record)
        except Exception as error:
            log.warning("job %s (%s) attempt %s failed to record: %r", row.id, row.kind, row.attempts, error)
            await self._settle_alone(kind, row, Retry(repr(error)), job)
            return
        self._wake.set()  # what it recorded may have made other jobs due

    async def _settle_alone(
        self, kind: AnyKind | None, row: ClaimedJob, outcome: Outcome, job: Job[Any] | None = None
    ) -> None:
        """Settles a job whose record did not run (or failed), in a shared transaction of its own."""

        async def settle(conn: AsyncConnection) -> None:
            await self._settle(conn, kind, row, outcome, job)

        try:
            await self._shared.run(settle)
        except Exception:
            log.exception("settling job %s (%s) failed; its lease will expire", row.id, row.kind)

    async def _settle(
        self,
        conn: AsyncConnection,
        kind: AnyKind | None,
        row: ClaimedJob,
        outcome: Outcome,
        job: Job[Any] | None,
    ) -> None:
        now = _now()
        if isinstance(outcome, Done):
            await job_store.complete(conn, row, now=now)
            return
        if isinstance(outcome, Retry) and kind is not None and row.attempts < kind.retry.max_attempts:
            delay = outcome.delay if outcome.delay is not None else kind.retry.delay(row.attempts)
            await job_store.retry_later(conn, row, now=now, delay=delay, error=outcome.reason[:2000])
            return
        log.error("job %s (%s) dead after %s attempts: %s", row.id, row.kind, row.attempts, outcome.reason)
        buried = await job_store.bury(conn, row, now=now, error=outcome.reason[:2000])
        if buried and kind is not None and job is not None:
            await kind.abandon(conn, job, outcome.reason)
