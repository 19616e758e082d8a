"""The worker loop against a real database: job kinds performed and recorded, settling in shared
transactions, retries with backoff, burying, ordering keys, waking, stopping, lease fencing.

Nothing here sleeps and then asserts that something did not happen: a check that the worker left
something alone is made after an event that proves it had its chance (a later job completed, the
worker stopped, a claim came back empty).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.queue import jobs as job_store
from tidings.queue.jobs import DEAD, DONE, LEASED, PENDING, ClaimedJob, NewJob, RetryPolicy
from tidings.queue.kinds import (
    Bury,
    DatabaseOnlyKind,
    Done,
    Job,
    JobKind,
    Outcome,
    PermanentFailure,
    Retry,
    RetryLater,
)
from tidings.queue.worker import Worker
from tidings.store.database import Database
from tidings.store.shared_transactions import SharedTransactions, Work
from tidings.store.tables import jobs

BASE = 0.04  # backoff base: attempt n waits between BASE * 2**(n-1) / 2 and BASE * 2**(n-1)
NOTE = "note"  # jobs that records and abandons write, to show what committed; never due, never run
LATER = datetime(2100, 1, 1, tzinfo=UTC)


class Probe(BaseModel):
    n: int = 0
    key: str | None = None


Perform = Callable[[Job[Probe]], Awaitable[Any]]
Record = Callable[[AsyncConnection, Job[Probe], Any], Awaitable[Outcome]]
Abandon = Callable[[AsyncConnection, Job[Probe], str], Awaitable[None]]


class Scripted(JobKind[Probe, Any]):
    """A kind whose halves are given by each test; it remembers every call."""

    name = "scripted"
    payload_type = Probe

    def __init__(
        self,
        *,
        perform: Perform | None = None,
        record: Record | None = None,
        abandon: Abandon | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.retry = RetryPolicy(
            max_attempts=max_attempts, base_seconds=BASE, max_seconds=1.0, jitter=random.Random(3)
        )
        self._perform = perform
        self._record = record
        self._abandon = abandon
        self.performed: list[tuple[Job[Probe], float]] = []  # with time.monotonic() at the start
        self.recorded: list[tuple[Job[Probe], Any]] = []
        self.abandoned: list[tuple[Job[Probe], str]] = []

    @classmethod
    def ordering_key(cls, payload: Probe) -> str | None:
        return payload.key

    async def perform(self, job: Job[Probe]) -> Any:
        self.performed.append((job, time.monotonic()))
        if self._perform is not None:
            return await self._perform(job)
        return f"result {job.payload.n}"

    async def record(self, conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        assert conn.in_transaction()
        self.recorded.append((job, result))
        if self._record is not None:
            return await self._record(conn, job, result)
        return Done()

    async def abandon(self, conn: AsyncConnection, job: Job[Probe], reason: str) -> None:
        assert conn.in_transaction()
        self.abandoned.append((job, reason))
        if self._abandon is not None:
            await self._abandon(conn, job, reason)

    def attempts(self) -> list[tuple[int, int]]:
        """(payload n, attempt) of every perform, in order."""
        return [(job.payload.n, job.attempts) for job, _ in self.performed]


class Marker(DatabaseOnlyKind[Probe]):
    """A job that only records. Once one enqueued after some moment is done, the worker has
    claimed since that moment."""

    name = "marker"
    payload_type = Probe
    retry = RetryPolicy(max_attempts=3, base_seconds=BASE, max_seconds=1.0)

    def __init__(self) -> None:
        self.recorded: list[tuple[Job[Probe], Any]] = []

    async def record(self, conn: AsyncConnection, job: Job[Probe], result: None) -> Outcome:
        self.recorded.append((job, result))
        return Done()


class CountingShared(SharedTransactions):
    """Counts the units handed over, so that a test can tell when they are all queued."""

    submitted = 0

    async def run(self, work: Work[Any]) -> Any:
        self.submitted += 1
        return await super().run(work)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def shared(database: Database) -> AsyncIterator[CountingShared]:
    transactions = CountingShared(database)
    transactions.start()
    yield transactions
    await transactions.stop()


@pytest.fixture
async def workers(database: Database, shared: CountingShared) -> AsyncIterator[Callable[..., Worker]]:
    """Builds and starts workers; stops whatever is still running at the end (before `shared`)."""
    started: list[Worker] = []

    def build(
        *kinds: JobKind[Any, Any],
        poll_seconds: float = 0.05,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
    ) -> Worker:
        worker = Worker(
            database, list(kinds), shared, concurrency=concurrency, poll_seconds=poll_seconds, lease=lease
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


def note(job: Job[Probe], what: str) -> NewJob:
    """A row a record or abandon writes in its transaction: it exists only if that committed."""
    return NewJob(NOTE, {"job": job.id, "attempt": job.attempts, "what": what}, run_at=LATER)


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


async def a_claim_happens(db: Database) -> None:
    """Returns once the worker (which must run Marker) has claimed after this call."""
    (marker,) = await add(db, Marker.new(Probe()))
    await until_state(db, marker, DONE)


def test_new_builds_the_job_its_kind_stores() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert Scripted.new(Probe(n=3, key="a"), run_at=at) == NewJob(
        kind="scripted", payload={"n": 3, "key": "a"}, ordering_key="a", run_at=at
    )
    assert Scripted.new(Probe(n=4)) == NewJob(kind="scripted", payload={"n": 4, "key": None})


# --- outcomes ----------------------------------------------------------------------------------


async def test_a_job_performed_and_recorded_done_is_completed(
    database: Database, workers: Callable[..., Worker]
) -> None:
    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        await job_store.enqueue(conn, [note(job, result)], now=datetime.now(UTC))
        return Done()

    kind = Scripted(record=record)
    (job_id,) = await add(database, Scripted.new(Probe(n=7)))
    worker = workers(kind)
    done = await until_state(database, job_id, DONE)

    job = Job(job_id, "scripted", Probe(n=7), 1)  # the payload parsed into the kind's model
    assert [performed for performed, _ in kind.performed] == [job]
    assert kind.recorded == [(job, "result 7")]  # record gets what perform returned
    assert await notes(database) == [{"job": job_id, "attempt": 1, "what": "result 7"}]
    assert done["leased_by"] == worker.worker_id and done["attempts"] == 1
    assert done["finished_at"] is not None and done["lease_until"] is None and done["last_error"] is None
    assert kind.abandoned == []


async def test_a_database_only_kind_records_without_performing(
    database: Database, workers: Callable[..., Worker]
) -> None:
    marker = Marker()
    (job_id,) = await add(database, Marker.new(Probe(n=1)))
    workers(marker)
    await until_state(database, job_id, DONE)
    assert marker.recorded == [(Job(job_id, "marker", Probe(n=1), 1), None)]


@pytest.mark.parametrize(
    ("failure", "expected_error"),
    [
        ("raise", repr(RuntimeError("boom"))),
        ("retry-later", "provider busy"),
        ("record-retry", "receiver said 503"),
    ],
    ids=["perform-raises", "retry-later-without-delay", "record-says-retry"],
)
async def test_failures_are_retried_with_backoff_then_buried_once(
    database: Database, workers: Callable[..., Worker], failure: str, expected_error: str
) -> None:
    async def perform(job: Job[Probe]) -> str:
        if failure == "raise":
            raise RuntimeError("boom")
        if failure == "retry-later":
            raise RetryLater("provider busy")
        return "sent"

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        return Retry("receiver said 503")

    kind = Scripted(perform=perform, record=record, max_attempts=3)
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

    await a_claim_happens(database)  # nothing more happens to a dead job
    assert len(kind.performed) == 3 and len(kind.abandoned) == 1
    assert (await row(database, job_id))["state"] == DEAD


async def test_a_job_that_succeeds_on_a_retry_is_done_and_not_buried(
    database: Database, workers: Callable[..., Worker]
) -> None:
    async def perform(job: Job[Probe]) -> str:
        if job.attempts < 2:
            raise ValueError("first time fails")
        return "ok"

    kind = Scripted(perform=perform, max_attempts=3)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, poll_seconds=0.01)
    done = await until_state(database, job_id, DONE)
    assert kind.attempts() == [(0, 1), (0, 2)]
    assert [(job.attempts, result) for job, result in kind.recorded] == [(2, "ok")]
    assert done["last_error"] == repr(ValueError("first time fails"))
    assert kind.abandoned == []


@pytest.mark.parametrize("source", ["retry-later", "record-retry"])
async def test_a_retry_with_a_delay_puts_the_job_back_for_that_long(
    database: Database, workers: Callable[..., Worker], source: str
) -> None:
    async def perform(job: Job[Probe]) -> None:
        if source == "retry-later":
            raise RetryLater("come back in a minute", timedelta(minutes=1))

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        return Retry("come back in a minute", timedelta(minutes=1))

    kind = Scripted(perform=perform, record=record)
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


@pytest.mark.parametrize("source", ["permanent-failure", "record-bury"])
async def test_a_permanent_failure_buries_at_once(
    database: Database, workers: Callable[..., Worker], source: str
) -> None:
    async def perform(job: Job[Probe]) -> None:
        if source == "permanent-failure":
            raise PermanentFailure("the account no longer exists")

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        await job_store.enqueue(conn, [note(job, "recorded")], now=datetime.now(UTC))
        return Bury("the account no longer exists")

    kind = Scripted(perform=perform, record=record, max_attempts=5)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert len(kind.performed) == 1 and dead["attempts"] == 1
    assert dead["last_error"] == "the account no longer exists"
    assert [(job.id, reason) for job, reason in kind.abandoned] == [(job_id, "the account no longer exists")]
    # What a record writes commits with the burial it asks for.
    expected = [{"job": job_id, "attempt": 1, "what": "recorded"}] if source == "record-bury" else []
    assert await notes(database) == expected


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
    await until_state(database, good, DONE)  # the kind itself still works
    assert kind.attempts() == [(2, 1)]
    assert kind.abandoned == []  # there is no job of its kind to abandon


async def test_a_job_whose_workers_kept_dying_is_buried_without_running(
    database: Database, workers: Callable[..., Worker]
) -> None:
    kind = Scripted(max_attempts=1)
    (job_id,) = await add(database, Scripted.new(Probe(n=5)))
    # A worker claimed it with a lease that has already run out, and never came back.
    async with database.begin() as conn:
        await job_store.claim(
            conn, worker_id="dead-worker", limit=1, now=datetime.now(UTC), lease=timedelta(0)
        )
    workers(kind)
    dead = await until_state(database, job_id, DEAD)
    assert kind.performed == [] and kind.recorded == []
    assert dead["attempts"] == 2 and "attempts exhausted" in dead["last_error"]
    assert [(job, "attempts exhausted" in reason) for job, reason in kind.abandoned] == [
        (Job(job_id, "scripted", Probe(n=5), 2), True)
    ]


# --- burying and abandoning --------------------------------------------------------------------


async def test_abandon_runs_in_the_transaction_that_buries_the_job(
    database: Database, workers: Callable[..., Worker]
) -> None:
    seen_state: list[str] = []

    async def perform(job: Job[Probe]) -> None:
        raise PermanentFailure("gone")

    async def abandon(conn: AsyncConnection, job: Job[Probe], reason: str) -> None:
        # The burial is already written in this transaction, not yet committed anywhere else.
        seen_state.append((await conn.execute(select(jobs.c.state).where(jobs.c.id == job.id))).scalar_one())
        await job_store.enqueue(conn, [note(job, f"abandoned: {reason}")], now=datetime.now(UTC))

    kind = Scripted(perform=perform, abandon=abandon)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind)
    await until_state(database, job_id, DEAD)
    await until(lambda: len(kind.abandoned) == 1)
    assert seen_state == [DEAD]
    assert await notes(database) == [{"job": job_id, "attempt": 1, "what": "abandoned: gone"}]


async def test_a_failing_abandon_rolls_back_the_burial_with_it(
    database: Database, workers: Callable[..., Worker]
) -> None:
    async def perform(job: Job[Probe]) -> None:
        raise PermanentFailure("gone")

    async def abandon(conn: AsyncConnection, job: Job[Probe], reason: str) -> None:
        await job_store.enqueue(conn, [note(job, "abandoned")], now=datetime.now(UTC))
        if job.attempts == 1:
            raise RuntimeError("could not reject the message")

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


# --- shared transactions -----------------------------------------------------------------------


async def test_record_and_settle_commit_together_and_a_failing_record_fails_only_its_job(
    database: Database, workers: Callable[..., Worker], shared: CountingShared
) -> None:
    count = 4
    release = asyncio.Event()

    async def perform(job: Job[Probe]) -> str:
        await release.wait()
        return f"result {job.payload.n}"

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        await job_store.enqueue(conn, [note(job, result)], now=datetime.now(UTC))
        if job.payload.n == count - 1 and job.attempts == 1:
            raise RuntimeError("record failed")
        return Done()

    kind = Scripted(perform=perform, record=record)
    # The failing job is the newest: its record comes last in the shared transaction, after the
    # others' records have written.
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(count)))
    workers(kind, concurrency=count, poll_seconds=0.01)
    await until(lambda: len(kind.performed) == count)

    # Hold the shared runner in a transaction of its own, so that every record queues behind it
    # and all of them then run in one transaction.
    gate_entered, gate_open = asyncio.Event(), asyncio.Event()

    async def gate(conn: AsyncConnection) -> None:
        gate_entered.set()
        await gate_open.wait()

    gate_unit = asyncio.create_task(shared.run(gate))
    await asyncio.wait_for(gate_entered.wait(), timeout=5)
    submitted = shared.submitted
    release.set()
    await until(lambda: shared.submitted == submitted + count)
    gate_open.set()
    await gate_unit

    for job_id in ids[:-1]:
        done = await until_state(database, job_id, DONE)
        assert done["attempts"] == 1 and done["last_error"] is None
    failed = await until_state(database, ids[-1], DONE)
    assert failed["attempts"] == 2 and failed["last_error"] == repr(RuntimeError("record failed"))

    # The others ran twice: in the transaction that failed, then each in one of its own.
    recorded = [(job.payload.n, job.attempts) for job, _ in kind.recorded]
    assert sorted(recorded) == [(0, 1), (0, 1), (1, 1), (1, 1), (2, 1), (2, 1), (3, 1), (3, 1), (3, 2)]
    # What committed: one note per job (the failed transaction's writes were rolled back), and
    # none from the failing job's first attempt.
    written = sorted((n["job"], n["attempt"]) for n in await notes(database))
    assert written == [(ids[0], 1), (ids[1], 1), (ids[2], 1), (ids[3], 2)]
    assert kind.abandoned == []


async def test_a_settle_that_fails_takes_back_what_the_record_wrote(
    database: Database, workers: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = job_store.complete

    async def complete(conn: AsyncConnection, job: ClaimedJob, *, now: datetime) -> bool:
        if job.attempts == 1:
            raise RuntimeError("settle failed")
        return await original(conn, job, now=now)

    monkeypatch.setattr(job_store, "complete", complete)

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        await job_store.enqueue(conn, [note(job, result)], now=datetime.now(UTC))
        return Done()

    kind = Scripted(record=record)
    (job_id,) = await add(database, Scripted.new(Probe()))
    workers(kind, poll_seconds=0.01)
    done = await until_state(database, job_id, DONE)
    assert done["attempts"] == 2 and done["last_error"] == repr(RuntimeError("settle failed"))
    assert [job.attempts for job, _ in kind.recorded] == [1, 2]
    assert await notes(database) == [{"job": job_id, "attempt": 2, "what": "result 0"}]


async def test_many_jobs_finishing_together_share_a_transaction(
    database: Database, workers: Callable[..., Worker], shared: CountingShared
) -> None:
    count = 20
    release = asyncio.Event()

    async def perform(job: Job[Probe]) -> None:
        await release.wait()

    kind = Scripted(perform=perform)
    ids = await add(database, *(Scripted.new(Probe(n=n)) for n in range(count)))
    workers(kind, concurrency=count, poll_seconds=0.01)
    await until(lambda: len(kind.performed) == count)

    before = shared.transactions
    release.set()
    for job_id in ids:
        await until_state(database, job_id, DONE)
    # Records and settles, all in one transaction: a transaction per job would be 20, and
    # settling apart from recording would take a second.
    assert shared.transactions - before == 1
    assert len(kind.recorded) == count


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
        await until_state(database, job_id, DONE)
    assert [row_n for row_n in kind.attempts() if row_n[0] < 10] == [(0, 1)]
    assert [(await row(database, job_id))["state"] for job_id in ids] == [LEASED, PENDING, PENDING]

    # The first fails and waits for its retry; the later ones still wait for it.
    gate.set()
    for job_id in ids:
        await until_state(database, job_id, DONE)
    assert [attempt for attempt in kind.attempts() if attempt[0] < 10] == [(0, 1), (0, 2), (1, 1), (2, 1)]
    assert peak["a"] == 1


# --- the loop: waking, stopping, concurrency -----------------------------------------------------


async def test_wake_runs_a_new_job_before_the_next_poll(
    database: Database, workers: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    claims: list[list[ClaimedJob]] = []
    original = job_store.claim

    async def claim(conn: AsyncConnection, **kwargs: Any) -> list[ClaimedJob]:
        claimed = await original(conn, **kwargs)
        claims.append(claimed)
        return claimed

    monkeypatch.setattr(job_store, "claim", claim)
    kind = Scripted()
    worker = workers(kind, poll_seconds=60)
    await until(lambda: len(claims) == 1)  # found nothing; next look in a minute
    assert claims == [[]]

    (probe,) = await add(database, Scripted.new(Probe(n=1)))
    worker.wake()
    await until_state(database, probe, DONE, timeout=5)
    # Taken by the claim the wake caused: the poll is a minute away.
    assert [[job.id for job in claimed] for claimed in claims[:2]] == [[], [probe]]


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
    assert (await row(database, running))["state"] == DONE
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
    assert kind.recorded == [] and kind.abandoned == []


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
        await until_state(database, job_id, DONE)
    assert peak == 2


@pytest.mark.parametrize(
    "late", ["perform-fails-permanently", "perform-fails", "record-says-done", "record-says-bury"]
)
async def test_a_worker_that_outlives_its_lease_cannot_settle_the_job_another_took(
    database: Database, workers: Callable[..., Worker], late: str
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

    async def record(conn: AsyncConnection, job: Job[Probe], result: Any) -> Outcome:
        if result == "late" and late == "record-says-bury":
            return Bury("too late")
        return Done()

    kind = Scripted(perform=perform, record=record)
    (job_id,) = await add(database, Scripted.new(Probe()))
    # The slow worker polls rarely, so that it does not take its own expired job back first.
    slow = workers(kind, lease=timedelta(seconds=0.2), poll_seconds=60)
    await asyncio.wait_for(first_started.wait(), timeout=5)
    fast = workers(kind, poll_seconds=0.02)
    await asyncio.wait_for(second_started.wait(), timeout=5)
    taken = dict(await row(database, job_id))
    assert (taken["state"], taken["leased_by"], taken["attempts"]) == (LEASED, fast.worker_id, 2)

    # The slow worker finishes while the fast one holds the job: its settling must change nothing.
    release_first.set()
    await slow.stop(grace_seconds=5)  # its job has run to the end, settling included
    assert dict(await row(database, job_id)) == taken
    assert kind.abandoned == []  # the fenced bury changed nothing, so nothing is abandoned

    release_second.set()
    done = await until_state(database, job_id, DONE)
    assert (done["leased_by"], done["attempts"], done["last_error"]) == (fast.worker_id, 2, None)
    assert kind.abandoned == []
    assert sorted(kind.attempts()) == [(0, 1), (0, 2)]
    assert sorted(result for _, result in kind.recorded) == (
        ["on time"] if late.startswith("perform") else ["late", "on time"]
    )
