"""The worker loop against a real database: job kinds performed and planned, claims and settles
through the group commit with the jobs' writes guarded by their settle, retries with backoff,
burying with what abandoning means, ordering keys, waking, stopping, lease fencing.

Nothing here sleeps and then asserts that something did not happen: a check that the worker left
something alone is made after an event that proves it had its chance (a later job completed, the
worker stopped, a claim came back empty).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pydantic import BaseModel
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import RowMapping

from tidings.queue import jobs as job_store
from tidings.queue.jobs import DEAD, LEASED, PENDING, ClaimedJob, NewJob, RetryPolicy, claimed_jobs
from tidings.queue.kinds import (
    Bury,
    Done,
    Job,
    JobKind,
    PermanentFailure,
    Plan,
    Postponed,
    Retry,
    RetryLater,
)
from tidings.queue.worker import Worker
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.prepared import Prepared
from tidings.store.statements import Execute, Rows, Statement
from tidings.store.tables import jobs
from tidings.store.writes import Writes

BASE = 0.04  # backoff base: attempt n waits between BASE * 2**(n-1) / 2 and BASE * 2**(n-1)
NOTE = "note"  # jobs that plans and abandons write, to show what committed; never due, never run
LATER = datetime(2100, 1, 1, tzinfo=UTC)


class Probe(BaseModel):
    n: int = 0
    key: str | None = None


Perform = Callable[[Job[Probe]], Awaitable[Any]]
Planner = Callable[[Job[Probe], Any], Awaitable[Plan]]
Abandon = Callable[[Job[Probe], str], Awaitable[Sequence[Execute]]]


class Scripted(JobKind[Probe, Any]):
    """A kind whose halves are given by each test; it remembers every call."""

    name = "scripted"
    payload_type = Probe

    def __init__(
        self,
        *,
        perform: Perform | None = None,
        plan: Planner | None = None,
        abandon: Abandon | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.retry = RetryPolicy(
            max_attempts=max_attempts, base_seconds=BASE, max_seconds=1.0, jitter=random.Random(3)
        )
        self._perform = perform
        self._plan = plan
        self._abandon = abandon
        self.performed: list[tuple[Job[Probe], float]] = []  # with time.monotonic() at the start
        self.planned: list[tuple[Job[Probe], Any]] = []
        self.abandoned: list[tuple[Job[Probe], str]] = []

    @classmethod
    def ordering_key(cls, payload: Probe) -> str | None:
        return payload.key

    async def perform(self, job: Job[Probe]) -> Any:
        self.performed.append((job, time.monotonic()))
        if self._perform is not None:
            return await self._perform(job)
        return f"result {job.payload.n}"

    async def plan(self, job: Job[Probe], result: Any) -> Plan:
        self.planned.append((job, result))
        if self._plan is not None:
            return await self._plan(job, result)
        return Plan(Done())

    async def abandon(self, job: Job[Probe], reason: str) -> Sequence[Execute]:
        self.abandoned.append((job, reason))
        if self._abandon is not None:
            return await self._abandon(job, reason)
        return ()

    def attempts(self) -> list[tuple[int, int]]:
        """(payload n, attempt) of every perform, in order."""
        return [(job.payload.n, job.attempts) for job, _ in self.performed]


class Marker(JobKind[Probe, None]):
    """A job with nothing to perform. Once one enqueued after some moment is done, the worker has
    claimed since that moment."""

    name = "marker"
    payload_type = Probe
    retry = RetryPolicy(max_attempts=3, base_seconds=BASE, max_seconds=1.0)

    def __init__(self) -> None:
        self.planned: list[tuple[Job[Probe], Any]] = []

    async def perform(self, job: Job[Probe]) -> None:
        return None

    async def plan(self, job: Job[Probe], result: None) -> Plan:
        self.planned.append((job, result))
        return Plan(Done())


class RecordingWriter(GroupCommitWriter):
    """The group commit, recording the worker's claims: how many were handed over, and the jobs
    each of them leased once committed."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, max_batch=256, window_seconds=0)
        self.claims_handed = 0
        self.claims: list[list[int]] = []

    async def write_background(self, statements: Sequence[Statement], *, soon: bool = False) -> list[Rows]:
        claim = any(isinstance(s, Execute) and s.returning for s in statements)
        self.claims_handed += claim
        results = await super().write_background(statements, soon=soon)
        if claim:
            self.claims.append([job.id for job in claimed_jobs([r for rows in results for r in rows])])
        return results


@pytest.fixture
def writes(database: Database) -> Writes:
    return Writes(database.engine.dialect)


@pytest.fixture
async def writer(database: Database) -> AsyncIterator[RecordingWriter]:
    group_commit = RecordingWriter(database)
    group_commit.start()
    yield group_commit
    await group_commit.stop()


@pytest.fixture
async def workers(
    database: Database, writer: RecordingWriter, writes: Writes
) -> AsyncIterator[Callable[..., Worker]]:
    """Builds and starts workers; stops whatever is still running at the end (before the writer)."""
    started: list[Worker] = []

    def build(
        *kinds: JobKind[Any, Any],
        poll_seconds: float = 0.05,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        worker_writes: Writes | None = None,
    ) -> Worker:
        worker = Worker(
            database,
            list(kinds),
            writer,
            worker_writes or writes,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            lease=lease,
        )
        worker.start()
        started.append(worker)
        return worker

    yield build
    for worker in started:
        await worker.stop(grace_seconds=1)


async def add(db: Database, *new_jobs: NewJob) -> list[int]:
    """Enqueues the jobs in one transaction; returns their ids in the order given."""
    async with db.begin() as conn:
        before = set((await conn.execute(select(jobs.c.id))).scalars())
        await job_store.enqueue(conn, list(new_jobs), now=datetime.now(UTC))
        after = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
    return [i for i in after if i not in before]


def note(writes: Writes, job: Job[Probe], what: str) -> list[Execute]:
    """A row a plan or abandon writes: it exists only if the job's settle committed with it."""
    new = NewJob(NOTE, {"job": job.id, "attempt": job.attempts, "what": what}, run_at=LATER)
    return writes.enqueue([new], datetime.now(UTC))


def failing(writes: Writes) -> list[Execute]:
    """A write the database refuses (a job without a kind: NOT NULL)."""
    return writes.enqueue([NewJob(cast(str, None), {}, run_at=LATER)], datetime.now(UTC))


def prepared(database: Database, statement: Any, **values: Any) -> Execute:
    """A statement of the test's own, rendered as the worker's writes are."""
    return Prepared(statement, database.engine.dialect).bind(values)


async def notes(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        query = select(jobs.c.payload).where(jobs.c.kind == NOTE).order_by(jobs.c.id)
        return list((await conn.execute(query)).scalars())


async def row(db: Database, job_id: int) -> RowMapping:
    async with db.read() as conn:
        return (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one()


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        reached = check()
        if not isinstance(reached, bool):
            reached = await reached
        if reached:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def until_state(db: Database, job_id: int, state: str, timeout: float = 10.0) -> RowMapping:
    async def reached() -> bool:
        return bool((await row(db, job_id))["state"] == state)

    await until(reached, timeout)
    return await row(db, job_id)


async def is_done(db: Database, job_id: int) -> bool:
    """A done job is deleted."""
    async with db.read() as conn:
        return (await conn.execute(select(jobs.c.id).where(jobs.c.id == job_id))).first() is None


async def until_done(db: Database, job_id: int, timeout: float = 10.0) -> None:
    await until(lambda: is_done(db, job_id), timeout)


async def a_claim_happens(db: Database) -> None:
    """Returns once the worker (which must run Marker) has claimed after this call."""
    (marker,) = await add(db, Marker.new(Probe()))
    await until_done(db, marker)


def test_new_builds_the_job_its_kind_stores() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert Scripted.new(Probe(n=3, key="a"), run_at=at) == NewJob(
        kind="scripted", payload={"n": 3, "key": "a"}, ordering_key="a", run_at=at
    )
    assert Scripted.new(Probe(n=4)) == NewJob(kind="scripted", payload={"n": 4, "key": None})


# --- outcomes ----------------------------------------------------------------------------------


async def test_a_job_performed_and_planned_done_is_deleted_with_its_writes_committed(
    database: Database, workers: Callable[..., Worker], writes: Writes
) -> None:
    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Done(), note(writes, job, result))

    kind = Scripted(plan=plan)
    (job_id,) = await add(database, Scripted.new(Probe(n=7)))
    workers(kind)
    await until_done(database, job_id)

    job = Job(job_id, "scripted", Probe(n=7), 1)  # the payload parsed into the kind's model
    assert [performed for performed, _ in kind.performed] == [job]
    assert kind.planned == [(job, "result 7")]  # plan gets what perform returned
    assert await notes(database) == [{"job": job_id, "attempt": 1, "what": "result 7"}]
    assert kind.abandoned == []


async def test_a_kind_with_nothing_to_perform_is_planned_and_done(
    database: Database, workers: Callable[..., Worker]
) -> None:
    marker = Marker()
    (job_id,) = await add(database, Marker.new(Probe(n=1)))
    workers(marker)
    await until_done(database, job_id)
    assert marker.planned == [(Job(job_id, "marker", Probe(n=1), 1), None)]


@pytest.mark.parametrize(
    ("failure", "expected_error"),
    [
        ("raise", repr(RuntimeError("boom"))),
        ("retry-later", "provider busy"),
        ("plan-retry", "receiver said 503"),
    ],
    ids=["perform-raises", "retry-later-without-delay", "plan-says-retry"],
)
async def test_failures_are_retried_with_backoff_then_buried_once(
    database: Database, workers: Callable[..., Worker], writes: Writes, failure: str, expected_error: str
) -> None:
    async def perform(job: Job[Probe]) -> str:
        if failure == "raise":
            raise RuntimeError("boom")
        if failure == "retry-later":
            raise RetryLater("provider busy")
        return "sent"

    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Retry("receiver said 503"), note(writes, job, "attempt recorded"))

    async def abandon(job: Job[Probe], reason: str) -> Sequence[Execute]:
        return note(writes, job, "abandoned")

    kind = Scripted(perform=perform, plan=plan, abandon=abandon, max_attempts=3)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, Marker(), poll_seconds=0.01)
    dead = await until_state(database, job_id, DEAD)

    assert kind.attempts() == [(0, 1), (0, 2), (0, 3)] and dead["attempts"] == 3
    # Equal jitter: the n-th retry waits at least half of BASE * 2**(n-1).
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(kind.performed)]
    assert gaps[0] >= BASE / 2 * 0.9
    assert gaps[1] >= BASE * 0.9
    assert dead["last_error"] == expected_error
    assert [(job.id, job.attempts, reason) for job, reason in kind.abandoned] == [(job_id, 3, expected_error)]
    # A retry's writes commit with it; the last attempt's, with the burial and what abandoning wrote.
    recorded = [(n["attempt"], n["what"]) for n in await notes(database)]
    if failure == "plan-retry":
        assert recorded == [
            (1, "attempt recorded"),
            (2, "attempt recorded"),
            (3, "attempt recorded"),
            (3, "abandoned"),
        ]
    else:
        assert recorded == [(3, "abandoned")]

    await a_claim_happens(database)  # nothing more happens to a dead job
    assert len(kind.performed) == 3 and len(kind.abandoned) == 1
    assert (await row(database, job_id))["state"] == DEAD


async def test_a_job_that_succeeds_on_a_retry_is_done_and_not_buried(
    database: Database, workers: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    async def perform(job: Job[Probe]) -> str:
        if job.attempts < 2:
            raise ValueError("first time fails")
        return "ok"

    kind = Scripted(perform=perform, max_attempts=3)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, poll_seconds=0.01)
    with caplog.at_level(logging.WARNING, logger="tidings"):
        await until_done(database, job_id)
    assert kind.attempts() == [(0, 1), (0, 2)]
    assert [(job.attempts, result) for job, result in kind.planned] == [(2, "ok")]
    assert f"attempt 1 failed: {ValueError('first time fails')!r}" in caplog.text
    assert kind.abandoned == []


@pytest.mark.parametrize("source", ["retry-later", "plan-retry"])
async def test_a_retry_with_a_delay_puts_the_job_back_for_that_long(
    database: Database, workers: Callable[..., Worker], source: str
) -> None:
    async def perform(job: Job[Probe]) -> None:
        if source == "retry-later":
            raise RetryLater("come back in a minute", timedelta(minutes=1))

    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Retry("come back in a minute", timedelta(minutes=1)))

    kind = Scripted(perform=perform, plan=plan)
    (job_id,) = await add(database, Scripted.new(Probe()))
    before = datetime.now(UTC)
    workers(kind, Marker(), poll_seconds=0.01)

    async def retried() -> bool:
        current = await row(database, job_id)
        return bool(current["state"] == PENDING and current["attempts"] == 1)

    await until(retried)
    current = await row(database, job_id)
    assert before + timedelta(seconds=59) <= current["run_at"] <= datetime.now(UTC) + timedelta(minutes=1)
    assert current["last_error"] == "come back in a minute"
    await a_claim_happens(database)
    assert len(kind.performed) == 1 and kind.abandoned == []
    assert (await row(database, job_id))["state"] == PENDING


@pytest.mark.parametrize("source", ["permanent-failure", "plan-bury"])
async def test_a_permanent_failure_buries_at_once(
    database: Database, workers: Callable[..., Worker], writes: Writes, source: str
) -> None:
    async def perform(job: Job[Probe]) -> None:
        if source == "permanent-failure":
            raise PermanentFailure("the account no longer exists")

    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Bury("the account no longer exists"), note(writes, job, "planned"))

    async def abandon(job: Job[Probe], reason: str) -> Sequence[Execute]:
        return note(writes, job, "abandoned")

    kind = Scripted(perform=perform, plan=plan, abandon=abandon, max_attempts=5)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert len(kind.performed) == 1 and dead["attempts"] == 1
    assert dead["last_error"] == "the account no longer exists"
    assert [(job.id, reason) for job, reason in kind.abandoned] == [(job_id, "the account no longer exists")]
    # What a plan writes commits with the burial it asks for, and so does what abandoning writes.
    planned = [{"job": job_id, "attempt": 1, "what": "planned"}] if source == "plan-bury" else []
    assert await notes(database) == [*planned, {"job": job_id, "attempt": 1, "what": "abandoned"}]


async def test_a_job_of_unknown_kind_is_buried(database: Database, workers: Callable[..., Worker]) -> None:
    kind = Scripted()
    (job_id,) = await add(database, NewJob("mystery", {}))
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert "no handler for job kind 'mystery'" in dead["last_error"]
    assert dead["attempts"] == 1
    assert kind.performed == [] and kind.abandoned == []


async def test_a_job_whose_payload_does_not_fit_its_kind_is_buried_without_running(
    database: Database, workers: Callable[..., Worker]
) -> None:
    kind = Scripted()
    (bad, good) = await add(database, NewJob("scripted", {"n": "many"}), Scripted.new(Probe(n=2)))
    workers(kind)
    dead = await until_state(database, bad, DEAD)
    assert "the payload does not fit its kind" in dead["last_error"]
    assert dead["attempts"] == 1
    await until_done(database, good)  # the kind itself still works
    assert kind.attempts() == [(2, 1)]
    assert kind.abandoned == []  # there is no job of its kind to abandon


async def test_a_job_whose_workers_kept_dying_is_buried_without_running(
    database: Database, workers: Callable[..., Worker], writer: RecordingWriter, writes: Writes
) -> None:
    kind = Scripted(max_attempts=1)
    (job_id,) = await add(database, Scripted.new(Probe(n=5)))
    # A worker claimed it with a lease that has already run out, and never came back.
    claim = writes.claim(worker_id="dead-worker", limit=1, now=datetime.now(UTC), lease=timedelta(0))
    (leased,) = await writer.write_background(claim)
    assert [row[0] for row in leased] == [job_id]
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert kind.performed == [] and kind.planned == []
    assert dead["attempts"] == 2 and "attempts exhausted" in dead["last_error"]
    assert [(job, "attempts exhausted" in reason) for job, reason in kind.abandoned] == [
        (Job(job_id, "scripted", Probe(n=5), 2), True)
    ]


# --- burying and abandoning --------------------------------------------------------------------


async def test_what_abandoning_writes_is_applied_after_the_burial_in_its_transaction(
    database: Database, workers: Callable[..., Worker], writes: Writes
) -> None:
    async def perform(job: Job[Probe]) -> None:
        raise PermanentFailure("gone")

    async def abandon(job: Job[Probe], reason: str) -> Sequence[Execute]:
        # Changes the job only if it is already dead: the burial has been written before it.
        seen_dead = prepared(
            database,
            update(jobs)
            .where(jobs.c.id == bindparam("job"), jobs.c.state == DEAD)
            .values(last_error=jobs.c.last_error + " (seen dead)"),
            job=job.id,
        )
        return [*note(writes, job, f"abandoned: {reason}"), seen_dead]

    kind = Scripted(perform=perform, abandon=abandon)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert dead["last_error"] == "gone (seen dead)"
    assert await notes(database) == [{"job": job_id, "attempt": 1, "what": "abandoned: gone"}]


@pytest.mark.parametrize("how", ["its-write-fails", "it-raises"])
async def test_a_failing_abandon_rolls_back_the_burial_with_it(
    database: Database, workers: Callable[..., Worker], writes: Writes, how: str
) -> None:
    async def perform(job: Job[Probe]) -> None:
        raise PermanentFailure("gone")

    async def abandon(job: Job[Probe], reason: str) -> Sequence[Execute]:
        written = note(writes, job, "abandoned")
        if job.attempts == 1 and how == "it-raises":
            raise RuntimeError("could not work out how to reject the message")
        return [*written, *failing(writes)] if job.attempts == 1 else written

    kind = Scripted(perform=perform, abandon=abandon, max_attempts=1)
    (job_id,) = await add(database, Scripted.new(Probe()))
    # The failed burial leaves the job leased; once the lease runs out it is taken again, and,
    # its attempts spent, buried without running.
    workers(kind, lease=timedelta(seconds=0.3), poll_seconds=0.02)
    dead = await until_state(database, job_id, DEAD)
    assert dead["attempts"] == 2 and "attempts exhausted" in dead["last_error"]
    assert kind.attempts() == [(0, 1)]
    assert [job.attempts for job, _ in kind.abandoned] == [1, 2]
    # The first abandon's write went with its rolled-back burial.
    assert await notes(database) == [{"job": job_id, "attempt": 2, "what": "abandoned"}]


# --- settling through the group commit -----------------------------------------------------------


async def test_writes_and_settle_commit_together_and_a_failing_write_fails_only_its_job(
    database: Database,
    workers: Callable[..., Worker],
    writes: Writes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    count = 4
    release = asyncio.Event()

    async def perform(job: Job[Probe]) -> str:
        await release.wait()
        return f"result {job.payload.n}"

    async def plan(job: Job[Probe], result: Any) -> Plan:
        written = note(writes, job, result)
        if job.payload.n == count - 1 and job.attempts == 1:
            written += failing(writes)
        return Plan(Done(), written)

    kind = Scripted(perform=perform, plan=plan)
    # The failing job is the newest: its writes come last in the shared transaction, after the
    # others' have been written.
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(count)))
    workers(kind, concurrency=count, poll_seconds=0.05, lease=timedelta(seconds=0.5))
    await until(lambda: len(kind.performed) == count)

    with caplog.at_level(logging.WARNING, logger="tidings"):
        release.set()  # every job finishes at once: their settles go to the writer together
        for job_id in ids[:-1]:
            await until_done(database, job_id)
        # The failing job's settle went with its failed write; its lease ran out and it ran again.
        await until_done(database, ids[-1])

    # They shared one transaction, which failed; then each was written in one of its own.
    shared = [r for r in caplog.records if r.getMessage().startswith("group commit of")]
    assert shared and all(isinstance(r.args, tuple) and r.args[0] >= count for r in shared)
    settling = [r.getMessage() for r in caplog.records if r.getMessage().startswith("settling job")]
    assert settling and all(f"job {ids[-1]} " in message for message in settling)
    # What committed: one note per job, none from the failing job's first attempt.
    written = sorted((n["job"], n["attempt"]) for n in await notes(database))
    assert written == [(ids[0], 1), (ids[1], 1), (ids[2], 1), (ids[3], 2)]
    assert sorted((job.payload.n, job.attempts) for job, _ in kind.planned) == [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
        (3, 2),
    ]
    assert kind.abandoned == []


async def test_a_plan_that_raises_is_retried_and_writes_nothing(
    database: Database, workers: Callable[..., Worker], writes: Writes
) -> None:
    async def plan(job: Job[Probe], result: Any) -> Plan:
        if job.attempts == 1:
            raise RuntimeError("plan failed")
        return Plan(Done(), note(writes, job, result))

    kind = Scripted(plan=plan)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, poll_seconds=0.01)
    await until_done(database, job_id)
    assert kind.attempts() == [(0, 1), (0, 2)]
    assert await notes(database) == [{"job": job_id, "attempt": 2, "what": "result 0"}]
    assert kind.abandoned == []


class FailingFirstSettles(Writes):
    """A job's first settle is refused by the database (it would leave the job without a kind)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database.engine.dialect)
        self._database = database

    def _refused(self, job: ClaimedJob) -> Execute:
        statement = update(jobs).where(jobs.c.id == bindparam("job")).values(kind=bindparam("kind"))
        return prepared(self._database, statement, job=job.id, kind=None)

    def complete(self, job: ClaimedJob) -> Execute:
        return self._refused(job) if job.attempts == 1 else super().complete(job)


async def test_a_settle_that_fails_takes_back_the_job_s_writes(
    database: Database, workers: Callable[..., Worker], writes: Writes
) -> None:
    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Done(), note(writes, job, result))

    kind = Scripted(plan=plan)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(
        kind,
        poll_seconds=0.02,
        lease=timedelta(seconds=0.3),
        worker_writes=FailingFirstSettles(database),
    )
    await until_done(database, job_id)
    assert [job.attempts for job, _ in kind.planned] == [1, 2]
    assert await notes(database) == [{"job": job_id, "attempt": 2, "what": "result 0"}]


async def test_many_jobs_finishing_together_share_a_commit(
    database: Database, workers: Callable[..., Worker], writer: RecordingWriter, writes: Writes
) -> None:
    count = 20
    release = asyncio.Event()

    async def perform(job: Job[Probe]) -> None:
        await release.wait()

    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Done(), note(writes, job, "done"))

    kind = Scripted(perform=perform, plan=plan)
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(count)))
    # It polls rarely: claims come from wakes only, and every one of them is counted.
    workers(kind, concurrency=count, poll_seconds=30)
    await until(lambda: len(kind.performed) == count)

    batches, claims = writer.batches_committed, writer.claims_handed
    release.set()
    for job_id in ids:
        await until_done(database, job_id)
    # Settles and their writes, all in one commit (the rest were the claims the finished jobs
    # woke): a commit per job would be 20.
    assert (writer.batches_committed - batches) - (writer.claims_handed - claims) <= 1
    assert len(kind.planned) == count and len(await notes(database)) == count


# --- ordering ----------------------------------------------------------------------------------


async def test_jobs_with_the_same_ordering_key_run_one_at_a_time_oldest_first(
    database: Database, workers: Callable[..., Worker]
) -> None:
    gate = asyncio.Event()
    running: dict[str | None, int] = {}
    peak: dict[str | None, int] = {}

    async def perform(job: Job[Probe]) -> None:
        key = job.payload.key
        running[key] = running.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), running[key])
        try:
            if job.payload.n == 0 and job.attempts == 1:
                await gate.wait()
                raise RuntimeError("first attempt fails")
        finally:
            running[key] -= 1

    kind = Scripted(perform=perform)
    ids = await add(database, *(Scripted.new(Probe(n=n, key="a")) for n in range(3)))
    workers(kind, poll_seconds=0.01)
    await until(lambda: kind.attempts() == [(0, 1)])

    # Neither an unkeyed job nor one of another key waits for key "a".
    others = await add(database, Scripted.new(Probe(n=10)), Scripted.new(Probe(n=20, key="b")))
    for job_id in others:
        await until_done(database, job_id)
    assert [row_n for row_n in kind.attempts() if row_n[0] < 10] == [(0, 1)]
    assert [(await row(database, job_id))["state"] for job_id in ids] == [LEASED, PENDING, PENDING]

    # The first fails and waits for its retry; the later ones still wait for it.
    gate.set()
    for job_id in ids:
        await until_done(database, job_id)
    assert [attempt for attempt in kind.attempts() if attempt[0] < 10] == [(0, 1), (0, 2), (1, 1), (2, 1)]
    assert peak["a"] == 1


# --- the loop: waking, stopping, concurrency -----------------------------------------------------


@pytest.mark.parametrize("when", ["now", "in 200 ms"])
async def test_a_wake_runs_a_job_when_it_is_due_not_at_the_next_poll(
    database: Database, workers: Callable[..., Worker], writer: RecordingWriter, when: str
) -> None:
    kind = Scripted()
    worker = workers(kind, poll_seconds=60)
    await until(lambda: len(writer.claims) == 1)  # found nothing; next look in a minute
    assert writer.claims == [[]]

    due = datetime.now(UTC) + (timedelta(0) if when == "now" else timedelta(milliseconds=200))
    (probe,) = await add(database, Scripted.new(Probe(n=1), run_at=due))
    if when == "now":
        worker.wake()
    else:
        worker.wake_at(due)
    await until_done(database, probe, timeout=10)
    # Taken by the claim the wake caused (not by an earlier one, which would have found it not
    # yet due): the poll is a minute away.
    assert writer.claims[:2] == [[], [probe]]


@pytest.mark.parametrize("outcome", ["retry", "postpone"])
async def test_a_job_put_back_for_a_moment_runs_again_when_due_not_at_the_next_poll(
    database: Database, workers: Callable[..., Worker], outcome: str
) -> None:
    # A receipt whose part is not stored yet comes back 50 ms later; the poll is a minute away.
    async def perform(job: Job[Probe]) -> None:
        if len(kind.performed) == 1:
            if outcome == "retry":
                raise RetryLater("not yet", timedelta(milliseconds=50))
            raise Postponed("not yet", timedelta(milliseconds=50))

    kind = Scripted(perform=perform)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, poll_seconds=60)
    await until_done(database, job_id, timeout=10)
    assert len(kind.performed) == 2


async def test_stop_waits_for_running_jobs_and_claims_nothing_more(
    database: Database, workers: Callable[..., Worker]
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def perform(job: Job[Probe]) -> None:
        started.set()
        await release.wait()
        finished.set()

    kind = Scripted(perform=perform)
    (running,) = await add(database, Scripted.new(Probe()))
    worker = workers(kind)
    await asyncio.wait_for(started.wait(), timeout=5)

    async def stop() -> bool:
        await worker.stop(grace_seconds=10)
        return finished.is_set()

    stopping = asyncio.create_task(stop())
    (later,) = await add(database, Scripted.new(Probe(n=1)))
    worker.wake()
    # A stop that did not wait would have returned long before this.
    asyncio.get_running_loop().call_later(0.2, release.set)

    assert await asyncio.wait_for(stopping, timeout=5), "stop returned while a job was still running"
    # Its settle was written before stop returned.
    assert await is_done(database, running)
    # The loop has ended: what it did not claim, it never will.
    assert (await row(database, later))["state"] == PENDING
    assert kind.attempts() == [(0, 1)]


async def test_stop_cancels_jobs_past_the_grace_period_and_leaves_their_lease(
    database: Database, workers: Callable[..., Worker]
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def perform(job: Job[Probe]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    kind = Scripted(perform=perform)
    (job_id,) = await add(database, Scripted.new(Probe()))
    worker = workers(kind)
    await asyncio.wait_for(started.wait(), timeout=5)
    begun = time.monotonic()
    await asyncio.wait_for(worker.stop(grace_seconds=0.1), timeout=5)
    assert time.monotonic() - begun < 2
    assert cancelled.is_set()
    # Unsettled: another worker claims it again once the lease runs out.
    left = await row(database, job_id)
    assert left["state"] == LEASED and left["lease_until"] is not None
    assert kind.planned == [] and kind.abandoned == []


async def test_no_more_jobs_run_at_once_than_the_concurrency(
    database: Database, workers: Callable[..., Worker]
) -> None:
    count = 5
    gates = [asyncio.Event() for _ in range(count)]
    running: set[int] = set()
    peak = 0

    async def perform(job: Job[Probe]) -> None:
        nonlocal peak
        running.add(job.payload.n)
        peak = max(peak, len(running))
        try:
            await gates[job.payload.n].wait()
        finally:
            running.discard(job.payload.n)

    kind = Scripted(perform=perform)
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(count)))
    workers(kind, concurrency=2, poll_seconds=0.01)
    await until(lambda: len(running) >= 2)
    assert peak == 2
    async with database.read() as conn:
        states = (await conn.execute(select(jobs.c.state).order_by(jobs.c.id))).scalars().all()
    assert sorted(states) == [LEASED, LEASED, PENDING, PENDING, PENDING]

    # Free one slot at a time: each time the worker claims again, and must take only one.
    for started in range(3, count + 1):
        gates[min(running)].set()

        def claimed_again(started: int = started) -> bool:
            return len(kind.performed) >= started

        await until(claimed_again)
        assert peak == 2
    for gate in gates:
        gate.set()
    for job_id in ids:
        await until_done(database, job_id)
    assert peak == 2


async def test_jobs_whose_worker_died_count_against_the_concurrency(
    database: Database, workers: Callable[..., Worker], writer: RecordingWriter, writes: Writes
) -> None:
    release = asyncio.Event()
    running: set[int] = set()
    peak = 0

    async def perform(job: Job[Probe]) -> None:
        nonlocal peak
        running.add(job.payload.n)
        peak = max(peak, len(running))
        try:
            await release.wait()
        finally:
            running.discard(job.payload.n)

    kind = Scripted(perform=perform)
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(4)))
    # A worker leased the first two and died: their leases have run out.
    claim = writes.claim(worker_id="dead-worker", limit=2, now=datetime.now(UTC), lease=timedelta(0))
    await writer.write_background(claim)
    assert writer.claims == [ids[:2]]

    workers(kind, concurrency=2, poll_seconds=0.01)
    await until(lambda: len(writer.claims) >= 2)
    assert writer.claims[1] == ids[:2]  # the dead worker's jobs, and no more than it has room for
    await until(lambda: len(running) == 2)
    release.set()
    for job_id in ids:
        await until_done(database, job_id)
    assert peak == 2
    assert sorted(kind.attempts()) == [(0, 2), (1, 2), (2, 1), (3, 1)]


@pytest.mark.parametrize(
    "late",
    ["perform-fails-permanently", "perform-fails", "plan-says-done", "plan-says-retry", "plan-says-bury"],
)
async def test_a_worker_that_outlives_its_lease_changes_nothing(
    database: Database,
    workers: Callable[..., Worker],
    writes: Writes,
    caplog: pytest.LogCaptureFixture,
    late: str,
) -> None:
    first_started, release_first = asyncio.Event(), asyncio.Event()
    second_started, release_second = asyncio.Event(), asyncio.Event()

    async def perform(job: Job[Probe]) -> str:
        if job.attempts > 1:
            second_started.set()
            await release_second.wait()
            return "on time"
        first_started.set()
        await release_first.wait()
        if late == "perform-fails-permanently":
            raise PermanentFailure("too late: would bury a job that is no longer ours")
        if late == "perform-fails":
            raise RuntimeError("too late: would put back a job that is no longer ours")
        return "late"

    async def plan(job: Job[Probe], result: Any) -> Plan:
        written = note(writes, job, result)
        if result == "late" and late == "plan-says-bury":
            return Plan(Bury("too late"), written)
        if result == "late" and late == "plan-says-retry":
            return Plan(Retry("too late"), written)
        return Plan(Done(), written)

    async def abandon(job: Job[Probe], reason: str) -> Sequence[Execute]:
        return note(writes, job, "abandoned")

    kind = Scripted(perform=perform, plan=plan, abandon=abandon)
    (job_id,) = await add(database, Scripted.new(Probe()))
    # The slow worker polls rarely, so that it does not take its own expired job back first.
    slow = workers(kind, lease=timedelta(seconds=0.2), poll_seconds=60)
    await asyncio.wait_for(first_started.wait(), timeout=5)
    fast = workers(kind, poll_seconds=0.02)
    await asyncio.wait_for(second_started.wait(), timeout=5)
    taken = dict(await row(database, job_id))
    assert (taken["state"], taken["leased_by"], taken["attempts"]) == (LEASED, fast.worker_id, 2)

    # The slow worker finishes while the fast one holds the job: neither its settle nor the
    # writes that came with it (its plan's, its abandon's) may change anything.
    with caplog.at_level(logging.ERROR, logger="tidings.worker"):
        release_first.set()
        await slow.stop(grace_seconds=5)  # its job has run to the end, settling included
    assert dict(await row(database, job_id)) == taken
    assert await notes(database) == []
    # Its writes were skipped by the guard, not lost to an error.
    assert not [r for r in caplog.records if r.getMessage().startswith("settling job")]
    # It did get as far as settling: a burial asked for what abandoning the job would write.
    abandoning = late in ("perform-fails-permanently", "plan-says-bury")
    assert [job.attempts for job, _ in kind.abandoned] == ([1] if abandoning else [])

    release_second.set()
    await until_done(database, job_id)
    assert await notes(database) == [{"job": job_id, "attempt": 2, "what": "on time"}]
    assert sorted(kind.attempts()) == [(0, 1), (0, 2)]
    assert sorted(result for _, result in kind.planned) == (
        ["on time"] if late.startswith("perform") else ["late", "on time"]
    )


class SettlesDuringAnOutage(RecordingWriter):
    """Refuses the first `failures` settles as a database that is down refuses a connection."""

    def __init__(self, database: Database, failures: int) -> None:
        super().__init__(database)
        self.failures = failures

    async def write_background(self, statements: Sequence[Statement], *, soon: bool = False) -> list[Rows]:
        claim = any(isinstance(s, Execute) and s.returning for s in statements)
        if not claim and self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        return await super().write_background(statements, soon=soon)


async def test_a_settle_the_database_could_not_take_is_written_once_it_is_back(
    database: Database, writes: Writes
) -> None:
    """The job is performed once: its outcome waits for the database, not for its lease (a
    minute) to run out and the work (a webhook sent) to be done again."""
    writer = SettlesDuringAnOutage(database, failures=3)
    writer.start()
    kind = Scripted()
    (job_id,) = await add(database, Scripted.new(Probe()))
    worker = Worker(
        database, [kind], writer, writes, concurrency=4, poll_seconds=0.02, lease=timedelta(seconds=60)
    )
    worker.start()
    try:
        await until_done(database, job_id)
    finally:
        await worker.stop(grace_seconds=1)
        await writer.stop()
    assert writer.failures == 0
    assert kind.attempts() == [(0, 1)]
