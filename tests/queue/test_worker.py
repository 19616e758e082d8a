"""The worker loop against a real database: settling, retries with backoff, burying, waking, stopping."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.queue import jobs as job_store
from tidings.queue.jobs import DEAD, DONE, LEASED, PENDING, ClaimedJob, NewJob, RetryPolicy
from tidings.queue.worker import Handler, PermanentFailure, RetryLater, Worker
from tidings.store.database import Database
from tidings.store.tables import jobs

BASE = 0.04  # backoff base: attempt n waits between BASE * 2**(n-1) / 2 and BASE * 2**(n-1)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def workers(database: Database) -> AsyncIterator[Callable[..., Worker]]:
    """Builds and starts workers; stops whatever is still running at the end."""
    started: list[Worker] = []

    def build(
        handlers: Mapping[str, Handler],
        *,
        poll_seconds: float = 0.05,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        on_buried: Callable[[AsyncConnection, ClaimedJob, str], Awaitable[None]] | None = None,
    ) -> Worker:
        worker = Worker(
            database,
            handlers,
            policy=RetryPolicy(max_attempts=3, base_seconds=BASE, max_seconds=1.0, jitter=random.Random(3)),
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            lease=lease,
            on_buried=on_buried,
        )
        worker.start()
        started.append(worker)
        return worker

    yield build
    for worker in started:
        await worker.stop(grace_seconds=1)


class Buried:
    """Records on_buried calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[ClaimedJob, str]] = []

    async def __call__(self, conn: AsyncConnection, job: ClaimedJob, error: str) -> None:
        assert conn.in_transaction()
        self.calls.append((job, error))


@pytest.fixture
def buried() -> Buried:
    return Buried()


async def add(db: Database, *new_jobs: NewJob, max_attempts: int = 3) -> list[int]:
    async with db.begin() as conn:
        before = set((await conn.execute(select(jobs.c.id))).scalars())
        await job_store.enqueue(
            conn, list(new_jobs), now=datetime.now(UTC), default_max_attempts=max_attempts
        )
        after = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
    return [i for i in after if i not in before]


async def row(db: Database, job_id: int) -> RowMapping:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def until_state(db: Database, job_id: int, state: str, timeout: float = 10.0) -> RowMapping:
    async def reached() -> bool:
        return (await row(db, job_id))["state"] == state

    await until(reached, timeout)
    return await row(db, job_id)


async def test_a_handler_that_returns_completes_its_job(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    seen: list[ClaimedJob] = []

    async def handler(job: ClaimedJob) -> None:
        seen.append(job)

    (job_id,) = await add(database, NewJob("greet", {"to": "world"}))
    worker = workers({"greet": handler}, on_buried=buried)
    done = await until_state(database, job_id, DONE)
    assert [(j.id, j.payload, j.attempts) for j in seen] == [(job_id, {"to": "world"}, 1)]
    assert done["leased_by"] == worker.worker_id
    assert done["finished_at"] is not None and done["lease_until"] is None
    assert buried.calls == []


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("boom"), RetryLater("provider busy")],
    ids=["plain-exception", "retry-later-without-delay"],
)
async def test_failures_are_retried_with_backoff_then_buried_once(
    database: Database, workers: Callable[..., Worker], buried: Buried, failure: Exception
) -> None:
    calls: list[float] = []

    async def handler(job: ClaimedJob) -> None:
        calls.append(time.monotonic())
        raise failure

    (job_id,) = await add(database, NewJob("flaky", {}), max_attempts=3)
    workers({"flaky": handler}, poll_seconds=0.01, on_buried=buried)
    dead = await until_state(database, job_id, DEAD)

    assert len(calls) == 3 and dead["attempts"] == 3
    # Equal jitter: the n-th retry waits at least half of BASE * 2**(n-1).
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert gaps[0] >= BASE / 2 * 0.9
    assert gaps[1] >= BASE * 0.9
    expected_error = repr(failure) if isinstance(failure, RuntimeError) else str(failure)
    assert dead["last_error"] == expected_error
    assert [(job.id, job.attempts, error) for job, error in buried.calls] == [(job_id, 3, expected_error)]
    await asyncio.sleep(0.1)  # nothing more happens to a dead job
    assert len(calls) == 3 and len(buried.calls) == 1


async def test_a_job_that_succeeds_on_a_retry_is_done_and_not_buried(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    attempts: list[int] = []

    async def handler(job: ClaimedJob) -> None:
        attempts.append(job.attempts)
        if job.attempts < 2:
            raise ValueError("first time fails")

    (job_id,) = await add(database, NewJob("flaky", {}), max_attempts=3)
    workers({"flaky": handler}, poll_seconds=0.01, on_buried=buried)
    done = await until_state(database, job_id, DONE)
    assert attempts == [1, 2]
    assert done["last_error"] == repr(ValueError("first time fails"))
    assert buried.calls == []


async def test_retry_later_with_a_delay_puts_the_job_back_for_that_long(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    calls = 0

    async def handler(job: ClaimedJob) -> None:
        nonlocal calls
        calls += 1
        raise RetryLater("come back in a minute", timedelta(minutes=1))

    (job_id,) = await add(database, NewJob("slow", {}))
    before = datetime.now(UTC)
    workers({"slow": handler}, poll_seconds=0.01, on_buried=buried)

    async def retried() -> bool:
        current = await row(database, job_id)
        return current["state"] == PENDING and current["attempts"] == 1

    await until(retried)
    current = await row(database, job_id)
    assert before + timedelta(seconds=59) <= current["run_at"] <= datetime.now(UTC) + timedelta(minutes=1)
    assert current["last_error"] == "come back in a minute"
    await asyncio.sleep(0.1)
    assert calls == 1 and buried.calls == []


async def test_permanent_failure_buries_at_once(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    calls = 0

    async def handler(job: ClaimedJob) -> None:
        nonlocal calls
        calls += 1
        raise PermanentFailure("the account no longer exists")

    (job_id,) = await add(database, NewJob("doomed", {}), max_attempts=5)
    workers({"doomed": handler}, on_buried=buried)
    dead = await until_state(database, job_id, DEAD)
    assert calls == 1 and dead["attempts"] == 1
    assert dead["last_error"] == "the account no longer exists"
    assert [(job.id, error) for job, error in buried.calls] == [(job_id, "the account no longer exists")]


async def test_a_job_of_unknown_kind_is_buried(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    (job_id,) = await add(database, NewJob("mystery", {}))
    workers({}, on_buried=buried)
    dead = await until_state(database, job_id, DEAD)
    assert "no handler for job kind 'mystery'" in dead["last_error"]
    assert len(buried.calls) == 1


async def test_a_job_whose_workers_kept_dying_is_buried_without_running(
    database: Database, workers: Callable[..., Worker], buried: Buried
) -> None:
    calls = 0

    async def handler(job: ClaimedJob) -> None:
        nonlocal calls
        calls += 1

    (job_id,) = await add(database, NewJob("crashy", {}), max_attempts=1)
    # A worker claimed it with a lease that has already run out, and never came back.
    async with database.begin() as conn:
        await job_store.claim(
            conn,
            worker_id="dead-worker",
            limit=1,
            now=datetime.now(UTC),
            lease=timedelta(0),
        )
    workers({"crashy": handler}, on_buried=buried)
    dead = await until_state(database, job_id, DEAD)
    assert calls == 0
    assert dead["attempts"] == 2 and "attempts exhausted" in dead["last_error"]
    assert len(buried.calls) == 1


async def test_wake_runs_a_new_job_before_the_next_poll(
    database: Database, workers: Callable[..., Worker]
) -> None:
    ran = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        if job.payload.get("probe"):
            ran.set()

    (first,) = await add(database, NewJob("k", {}))
    worker = workers({"k": handler}, poll_seconds=60)
    await until_state(database, first, DONE)
    await asyncio.sleep(0.05)  # the loop has looked for more work and is now waiting out its poll

    (probe,) = await add(database, NewJob("k", {"probe": True}))
    # Without a wake the job waits for the poll (a minute away) ...
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ran.wait(), timeout=0.2)
    # ... with one it runs straight away.
    worker.wake()
    await asyncio.wait_for(ran.wait(), timeout=2)
    await until_state(database, probe, DONE, timeout=2)


async def test_stop_waits_for_running_handlers_and_claims_nothing_more(
    database: Database, workers: Callable[..., Worker]
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        started.set()
        await release.wait()

    (running,) = await add(database, NewJob("k", {}))
    worker = workers({"k": handler})
    await asyncio.wait_for(started.wait(), timeout=5)

    stopping = asyncio.create_task(worker.stop(grace_seconds=10))
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop returned while a handler was still running"
    (later,) = await add(database, NewJob("k", {}))
    worker.wake()

    release.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert (await row(database, running))["state"] == DONE
    assert (await row(database, later))["state"] == PENDING


async def test_stop_cancels_handlers_past_the_grace_period_and_leaves_their_lease(
    database: Database, workers: Callable[..., Worker]
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    (job_id,) = await add(database, NewJob("k", {}))
    worker = workers({"k": handler})
    await asyncio.wait_for(started.wait(), timeout=5)
    begun = time.monotonic()
    await worker.stop(grace_seconds=0.1)
    assert time.monotonic() - begun < 2
    assert cancelled.is_set()
    # Unsettled: another worker claims it again once the lease runs out.
    assert (await row(database, job_id))["state"] == LEASED


async def test_no_more_handlers_run_at_once_than_the_concurrency(
    database: Database, workers: Callable[..., Worker]
) -> None:
    running = 0
    peak = 0
    release = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await release.wait()
        finally:
            running -= 1

    ids = await add(database, *(NewJob("k", {"n": n}) for n in range(5)))

    async def two_running() -> bool:
        return running == 2

    workers({"k": handler}, concurrency=2, poll_seconds=0.01)
    await until(two_running)
    await asyncio.sleep(0.1)  # give it every chance to overshoot
    assert peak == 2
    async with database.engine.connect() as conn:
        states = (await conn.execute(select(jobs.c.state).order_by(jobs.c.id))).scalars().all()
    assert sorted(states) == [LEASED, LEASED, PENDING, PENDING, PENDING]
    release.set()
    for job_id in ids:
        await until_state(database, job_id, DONE)
    assert peak == 2


async def test_a_worker_that_outlives_its_lease_cannot_settle_the_job_another_took(
    database: Database, workers: Callable[..., Worker]
) -> None:
    first_started = asyncio.Event()
    release_first = asyncio.Event()
    runs: list[tuple[str, int]] = []

    def handler_for(name: str) -> Handler:
        async def handler(job: ClaimedJob) -> None:
            runs.append((name, job.attempts))
            if name == "slow":
                first_started.set()
                await release_first.wait()
                raise PermanentFailure("too late: would bury a job that is no longer ours")

        return handler

    (job_id,) = await add(database, NewJob("k", {}))
    buried = Buried()
    # The slow worker polls rarely, so that it does not take its own expired job back first.
    workers({"k": handler_for("slow")}, lease=timedelta(seconds=0.2), poll_seconds=60, on_buried=buried)
    await asyncio.wait_for(first_started.wait(), timeout=5)
    fast = workers({"k": handler_for("fast")}, poll_seconds=0.02)
    done = await until_state(database, job_id, DONE)
    assert done["leased_by"] == fast.worker_id and done["attempts"] == 2

    release_first.set()
    await asyncio.sleep(0.1)
    assert (await row(database, job_id))["state"] == DONE
    assert buried.calls == []  # the fenced bury changed nothing, so nobody is told
    assert sorted(runs) == [("fast", 2), ("slow", 1)]


async def test_a_handler_that_settles_its_job_itself_is_not_settled_again(
    database: Database, workers: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A handler may complete its job in its own transaction (with its other writes) and say so.
    marked = datetime(2001, 1, 1, tzinfo=UTC)
    completions: list[int] = []
    original = job_store.complete

    async def counting(conn: Any, job: ClaimedJob, *, now: datetime) -> bool:
        completions.append(job.id)
        return await original(conn, job, now=now)

    monkeypatch.setattr(job_store, "complete", counting)

    async def handler(job: ClaimedJob) -> bool:
        async with database.begin() as conn:
            return await job_store.complete(conn, job, now=marked)

    (job_id,) = await add(database, NewJob("k", {}))
    workers({"k": handler})
    done = await until_state(database, job_id, DONE)
    await asyncio.sleep(0.05)
    assert done["finished_at"] == marked
    assert completions == [job_id]
