"""The worker loop: claim due jobs, perform each, write its outcome and settle it.

Performing runs concurrently, up to `concurrency` jobs at once, outside any transaction. Each
job's settle and writes then go to the group commit (group_commit.py) as one guarded group of
statements, so a hundred finished jobs cost one commit, not a hundred, and a slow job (a webhook
to a slow receiver) holds up nobody else's. A job gives its slot back as soon as its outcome is
handed to the commit: waiting for a commit is not work, and a slot held through it would cap the
worker at `concurrency` jobs per commit time. Settles waiting for their commit are bounded too
(`SETTLING_PER_SLOT` per slot): past that, the worker claims nothing until they land. The settle comes first and guards the rest: a worker
that lost the job's lease to another (it ran too long) changes nothing at all. A kind's perform
may still run more than once for one job (a crash before its commit), so it must be safe to repeat.

A settle or claim whose commit's answer was lost (CommitInDoubt: the database went away with it)
is neither written again nor forgotten: the worker asks the database what became of it until it
can say, and then writes the settle again if it did not land, or gives back the jobs of a claim
that did (their rows were lost with the answer). Recovery takes the outage, not a job's lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tidings import tracing
from tidings.metrics import JOBS_DEAD
from tidings.queue import jobs as job_store
from tidings.queue.jobs import ClaimedJob, claimed_jobs
from tidings.queue.kinds import (
    Bury,
    Done,
    Job,
    JobKind,
    Outcome,
    PermanentFailure,
    Plan,
    Postpone,
    Postponed,
    Retry,
    RetryLater,
)
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.outage import CommitInDoubt, CommittedRowsLost, database_unavailable
from tidings.store.statements import Execute
from tidings.store.writes import Writes, guarded

log = logging.getLogger("tidings.worker")

CLAIM_GATHER_SECONDS = 0.02
SETTLING_PER_SLOT = 4
# How often a settle is tried again while the database is out of reach: soon at first, then
# every couple of seconds, so that a restarted database is not met by every settle at once.
SETTLE_RETRY_FIRST_SECONDS = 0.1
SETTLE_RETRY_MAX_SECONDS = 2.0
AnyKind = JobKind[Any, Any]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settle:
    """A job's settle as written: its statements, and when the job is due again if it is."""

    statements: list[Execute]
    due: datetime | None = None


def _traced(row: ClaimedJob) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {"tidings.job.id": row.id, "tidings.job.attempt": row.attempts}
    if isinstance(row.payload.get("message_uuid"), str):
        attributes["tidings.message_uuid"] = row.payload["message_uuid"]
    return attributes


def _alive(worker_id: str) -> bool:
    """Whether the process of another worker id of this host still runs. One with this process's
    own pid is a predecessor's (a container's first process is always pid 1): this process has
    just made its own id."""
    try:
        pid = int(worker_id.split(":")[2])
    except (IndexError, ValueError):
        return True  # not an id this version makes: leave it to its lease
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class Worker:
    def __init__(
        self,
        database: Database,
        kinds: Sequence[AnyKind],
        writer: GroupCommitWriter,
        writes: Writes,
        *,
        concurrency: int,
        poll_seconds: float,
        lease: timedelta,
        role: str = "worker",
    ) -> None:
        self._database = database
        self._kinds = {kind.name: kind for kind in kinds}
        self._writer = writer
        self._writes = writes
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._lease = lease
        # Host, role, process: enough for a successor on the same host to tell that this worker
        # is dead (its process is gone) and take its jobs back at once.
        self.worker_id = f"{socket.gethostname()}:{role}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._role = role
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()  # performing
        self._settling: set[asyncio.Task[None]] = set()  # handed to the commit, not yet landed
        self._held: set[int] = set()  # the jobs claimed and not yet settled (or given up on)
        self._loop_task: asyncio.Task[None] | None = None
        self._database_lost = False  # the last claim found the database out of reach

    def wake(self) -> None:
        """Called after a commit that made a job due, so it runs without waiting for the next poll."""
        self._wake.set()

    def wake_at(self, due: datetime) -> None:
        """Called after a commit that made a job due at `due`: the worker wakes then, when that is
        sooner than its next poll (a receipt waiting 50 ms for its part to be stored, a simulated
        delivery a second away); a poll finds a job due later."""
        delay = (due - _now()).total_seconds()
        if delay <= 0:
            self.wake()
        elif delay < self._poll_seconds:
            asyncio.get_running_loop().call_later(delay, self.wake)

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
        if self._settling:
            _, pending = await asyncio.wait(self._settling, timeout=grace_seconds)
            for task in pending:
                task.cancel()  # still asking a database that is away what became of it: the lease decides
            await asyncio.gather(*pending, return_exceptions=True)

    async def reclaim_from_dead_predecessors(self) -> int:
        """Jobs leased by a worker of this host and role whose process is gone (it was killed, or
        the machine restarted) go back to the queue now, not when their leases run out. Another
        host's workers, or a live process's, are left to their leases."""
        prefix = f"{socket.gethostname()}:{self._role}:"
        async with self._database.begin() as conn:
            dead = [
                holder
                for holder in await job_store.leaseholders(conn, prefix)
                if holder != self.worker_id and not _alive(holder)
            ]
            released = await job_store.release(conn, dead) if dead else 0
        if released:
            log.warning(
                "took back %d jobs from %d dead worker(s) of this host: %s", released, len(dead), dead
            )
        return released

    async def _run(self) -> None:
        try:
            await self.reclaim_from_dead_predecessors()
        except Exception:
            log.exception("taking back the jobs of dead workers failed; their leases will expire")
        loop = asyncio.get_running_loop()
        last_claim = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            claimed: list[ClaimedJob] = []
            capacity = self._concurrency - len(self._inflight)
            if len(self._settling) >= SETTLING_PER_SLOT * self._concurrency:
                capacity = 0  # the commits are behind: let them catch up first
            # A claim is a transaction: while most slots are busy, free ones are refilled together
            # (at most CLAIM_GATHER_SECONDS later) rather than one transaction per finished job.
            gathering = loop.time() - last_claim < CLAIM_GATHER_SECONDS and capacity < self._concurrency / 2
            if capacity > 0 and not gathering:
                last_claim = loop.time()
                try:
                    claimed = await self._claim(capacity)
                except Exception as error:
                    if not database_unavailable(error):
                        log.exception("claiming jobs failed; retrying")
                    elif not self._database_lost:
                        log.warning(
                            "the database cannot be reached; claiming again until it is back: %r", error
                        )
                    self._database_lost = database_unavailable(error)
                else:
                    if self._database_lost:
                        log.warning("the database is back; claiming jobs again")
                    self._database_lost = False
            for row in claimed:
                self._held.add(row.id)
                task = asyncio.create_task(self._execute(row), name=f"job-{row.id}")
                self._inflight.add(task)
                task.add_done_callback(self._finished)
            # Never loop without waiting: with as many jobs running as slots (or, should a claim
            # ever return more than it was asked for, more), there is nothing to do until one ends.
            if len(claimed) < capacity or capacity <= 0:
                timeout = CLAIM_GATHER_SECONDS if gathering else self._poll_seconds
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                except TimeoutError:
                    pass

    async def _claim(self, capacity: int) -> list[ClaimedJob]:
        """A claim rides the group commit like any write; jobs whose workers died come first, and
        at most `capacity` come back in all: each is started at once, so more would run more jobs
        at a time than `concurrency` allows.

        A claim that committed but whose answer was lost leased jobs that nobody runs: they are
        given back as soon as the database can say that it did, not when their leases run out.
        Until then the worker claims nothing (the loop waits here): the jobs of a claim still on
        its way back would look just as lost."""
        statements = self._writes.claim(
            worker_id=self.worker_id, limit=capacity, now=_now(), lease=self._lease
        )
        try:
            answered = await self._writer.write_background(statements)
        except CommittedRowsLost:
            await self._release_lost()
            return []
        except CommitInDoubt as doubt:
            log.warning("a claim's commit is in doubt; asking the database until it can say: %r", doubt)
            committed = await self._resolved_unless_stopping(doubt)
            if committed:
                await self._release_lost()
            elif committed is None:
                log.error("stopping before a claim in doubt was resolved; its jobs' leases will expire")
            return []
        return claimed_jobs([row for rows in answered for row in rows])

    async def _release_lost(self) -> None:
        """Gives back this worker's leased jobs that it is not running (a claim's, whose rows were
        lost): while the database is out of reach it tries again, until the worker stops."""
        delay = SETTLE_RETRY_FIRST_SECONDS
        while True:
            try:
                async with self._database.begin() as conn:
                    released = await job_store.release_lost(conn, self.worker_id, sorted(self._held))
            except Exception as error:
                if not database_unavailable(error) or self._stopping.is_set():
                    log.error(
                        "giving back the jobs of a lost claim failed; their leases will expire: %r", error
                    )
                    return
            else:
                log.warning("gave back %d jobs of a claim whose answer was lost", released)
                return
            delay = await self._back_off(delay)

    async def _back_off(self, delay: float) -> float:
        """Waits `delay` seconds, or less if the worker is told to stop; returns the next delay."""
        try:
            await asyncio.wait_for(self._stopping.wait(), delay)
        except TimeoutError:
            pass
        return min(delay * 2, SETTLE_RETRY_MAX_SECONDS)

    async def _resolved_unless_stopping(self, doubt: CommitInDoubt) -> bool | None:
        """Whether the batch in doubt committed; None when the worker is told to stop first."""
        resolving = asyncio.create_task(self._writer.resolve(doubt))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({resolving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (resolving, stopping):
                task.cancel()
            await asyncio.gather(resolving, stopping, return_exceptions=True)
        return resolving.result() if not resolving.cancelled() else None

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _execute(self, row: ClaimedJob) -> None:
        kind = self._kinds.get(row.kind)
        if kind is None:
            self._finish(None, row, Plan(Bury(f"no handler for job kind {row.kind!r}")))
            return
        try:
            job: Job[Any] = Job(row.id, row.kind, kind.parse(row.payload), row.attempts)
        except ValidationError as error:
            self._finish(None, row, Plan(Bury(f"the payload does not fit its kind: {error}")))
            return
        if row.attempts > kind.retry.max_attempts:
            self._finish(kind, row, Plan(Bury("attempts exhausted (the job's worker kept dying)")), job)
            return
        try:
            with tracing.span(
                f"job {row.kind}", parent=row.payload.get(tracing.TRACE_KEY), attributes=_traced(row)
            ):
                plan = await kind.plan(job, await kind.perform(job))
        except asyncio.CancelledError:
            raise
        except RetryLater as retry:
            plan = Plan(Retry(str(retry), retry.delay))
        except Postponed as postponed:
            plan = Plan(Postpone(str(postponed), postponed.delay))
        except PermanentFailure as failure:
            plan = Plan(Bury(str(failure)))
        except Exception as error:
            log.warning("job %s (%s) attempt %s failed: %r", row.id, row.kind, row.attempts, error)
            plan = Plan(Retry(repr(error)))
        self._finish(kind, row, plan, job)

    def _finish(self, kind: AnyKind | None, row: ClaimedJob, plan: Plan, job: Job[Any] | None = None) -> None:
        """Hands the job's settle to the commit and frees its slot; the settle lands later."""
        task = asyncio.create_task(self._settle(kind, row, plan, job), name=f"settle-{row.id}")
        self._settling.add(task)
        task.add_done_callback(self._settled_one)

    def _settled_one(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        self._wake.set()  # what it wrote may have made other jobs due, and a settle slot is free

    async def _settle(self, kind: AnyKind | None, row: ClaimedJob, plan: Plan, job: Job[Any] | None) -> None:
        """Settles the job and applies its writes, together. While the database is out of reach
        the outcome is kept and written once it is back: the work is done (a webhook sent), and
        doing it again after the lease ran out would only repeat it. The writes are guarded by
        the lease, so a late settle of a job another worker has taken since changes nothing.
        Any other failure, or a worker told to stop, leaves the job to its lease."""
        delay = SETTLE_RETRY_FIRST_SECONDS
        settle: Settle | None = None
        try:
            while True:
                try:
                    if settle is None:
                        settle = await self._settle_statements(kind, row, plan.outcome, plan.writes, job)
                    await self._writer.write_background(settle.statements)
                    if settle.due is not None:
                        self.wake_at(settle.due)
                    return
                except CommitInDoubt as doubt:
                    # Its commit's answer was lost: it may have landed, and the lease guard does
                    # not always stop a second one (a postponed job gives its attempt back, so
                    # once claimed again it holds the very lease this settle names). So it is
                    # written again only once the database says it did not land.
                    if await self._in_doubt_landed(row, doubt):
                        return
                    continue
                except Exception as error:
                    if not database_unavailable(error) or self._stopping.is_set():
                        log.error(
                            "settling job %s (%s) failed; its lease will expire: %r", row.id, row.kind, error
                        )
                        return
                delay = await self._back_off(delay)
        finally:
            self._held.discard(row.id)

    async def _in_doubt_landed(self, row: ClaimedJob, doubt: CommitInDoubt) -> bool:
        """Whether the settle in doubt committed, asking until the database can say (a stop
        cancels it after its grace period). An error in asking counts as landed: the lease decides."""
        log.warning(
            "settling job %s (%s) is in doubt; asking until the database can say: %r", row.id, row.kind, doubt
        )
        try:
            return await self._writer.resolve(doubt)
        except Exception as error:
            log.error("settling job %s (%s) is in doubt; its lease will expire: %r", row.id, row.kind, error)
            return True

    async def _settle_statements(
        self,
        kind: AnyKind | None,
        row: ClaimedJob,
        outcome: Outcome,
        writes: Sequence[Execute],
        job: Job[Any] | None,
    ) -> Settle:
        now = _now()
        if isinstance(outcome, Done):
            return Settle(guarded(self._writes.complete(row), writes))
        if isinstance(outcome, Postpone):
            postpone = self._writes.postpone(row, now, outcome.delay, outcome.reason[:2000])
            return Settle(guarded(postpone, writes), now + outcome.delay)
        if isinstance(outcome, Retry) and kind is not None and row.attempts < kind.retry.max_attempts:
            delay = outcome.delay if outcome.delay is not None else kind.retry.delay(row.attempts)
            return Settle(
                guarded(self._writes.retry(row, now, delay, outcome.reason[:2000]), writes), now + delay
            )
        log.error("job %s (%s) dead after %s attempts: %s", row.id, row.kind, row.attempts, outcome.reason)
        JOBS_DEAD.labels(row.kind).inc()
        abandoned = await kind.abandon(job, outcome.reason) if kind is not None and job is not None else ()
        return Settle(guarded(self._writes.bury(row, now, outcome.reason[:2000]), [*writes, *abandoned]))
