"""The worker loop: claim due jobs, run each with its handler, settle it.

A handler returns normally when its work is done, raises RetryLater to be run again after a delay,
or PermanentFailure to be buried at once; any other exception is retried with backoff until the
job's attempts are spent. Handlers may be run more than once for one job (a crash between their
commit and the settle), so each is written to be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.queue import jobs as job_store
from tidings.queue.jobs import ClaimedJob, RetryPolicy
from tidings.store.database import Database

log = logging.getLogger("tidings.worker")

# A handler returns True when it settled the job itself, in the transaction that did its work
# (one commit instead of two); None or False leaves settling to the worker.
Handler = Callable[[ClaimedJob], Awaitable[bool | None]]

CLAIM_GATHER_SECONDS = 0.02


class RetryLater(Exception):
    def __init__(self, reason: str, delay: timedelta | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentFailure(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(
        self,
        database: Database,
        handlers: Mapping[str, Handler],
        *,
        policy: RetryPolicy,
        concurrency: int,
        poll_seconds: float,
        lease: timedelta,
        on_buried: Callable[[AsyncConnection, ClaimedJob, str], Awaitable[None]] | None = None,
    ) -> None:
        self._database = database
        self._handlers = dict(handlers)
        self._policy = policy
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._lease = lease
        self._on_buried = on_buried
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
            for job in claimed:
                task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
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

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self._handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentFailure(f"no handler for job kind {job.kind!r}")
            if job.attempts > job.max_attempts:
                raise PermanentFailure("attempts exhausted (the job's worker kept dying)")
            settled = await handler(job)
        except asyncio.CancelledError:
            raise
        except RetryLater as retry:
            await self._retry(job, str(retry), retry.delay)
            return
        except PermanentFailure as failure:
            await self._bury(job, str(failure))
            return
        except Exception as error:
            log.warning("job %s (%s) attempt %s failed: %r", job.id, job.kind, job.attempts, error)
            await self._retry(job, repr(error), None)
            return
        if not settled:
            await self._settle(job_store.complete, job)

    async def _retry(self, job: ClaimedJob, error: str, delay: timedelta | None) -> None:
        if job.attempts >= job.max_attempts:
            await self._bury(job, error)
            return
        wait = delay if delay is not None else self._policy.delay(job.attempts)
        async with self._database.begin() as conn:
            await job_store.retry_later(conn, job, now=_now(), delay=wait, error=error[:2000])

    async def _bury(self, job: ClaimedJob, error: str) -> None:
        log.error("job %s (%s) dead after %s attempts: %s", job.id, job.kind, job.attempts, error)
        # What burying a job means (a message rejected, say) commits with the burial, or neither does.
        async with self._database.begin() as conn:
            buried = await job_store.bury(conn, job, now=_now(), error=error[:2000])
            if buried and self._on_buried:
                await self._on_buried(conn, job, error)

    async def _settle(self, settle: Callable[..., Awaitable[bool]], job: ClaimedJob) -> None:
        async with self._database.begin() as conn:
            await settle(conn, job, now=_now())
