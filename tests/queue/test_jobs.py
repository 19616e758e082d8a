"""The durable job store: enqueue, claim with a lease, fencing, retries, ordering keys, purging.

Claims and settles are statements (store/writes.py) run through a started group commit, as the
worker runs them. Time is passed in explicitly (`now=`), so lease expiry and retry delays are
tested without sleeping.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import RowMapping

from tidings.queue.jobs import (
    DEAD,
    LEASED,
    PENDING,
    ClaimedJob,
    NewJob,
    RetryPolicy,
    claimed_jobs,
    enqueue,
)
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.statements import Execute
from tidings.store.tables import jobs
from tidings.store.writes import Writes, guarded

LEASE = timedelta(seconds=30)
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
# Returns a row when it runs: guarded by a settle, it tells whether the settle changed the job.
PROBE = Execute("SELECT 1", (), returning=True)


@pytest.fixture
async def writer(database: Database) -> AsyncIterator[GroupCommitWriter]:
    group_commit = GroupCommitWriter(database, max_batch=64, window_seconds=0)
    group_commit.start()
    yield group_commit
    await group_commit.stop()


@pytest.fixture
def writes(database: Database) -> Writes:
    return Writes(database.engine.dialect)


class Store:
    """The job store as the worker drives it: statements through the group commit."""

    def __init__(self, database: Database, writer: GroupCommitWriter, writes: Writes) -> None:
        self.database = database
        self.writer = writer
        self.writes = writes

    async def take(self, worker: str = "w1", *, now: datetime = T0, limit: int = 10) -> list[ClaimedJob]:
        statements = self.writes.claim(worker_id=worker, limit=limit, now=now, lease=LEASE)
        results = await self.writer.write_background(statements)
        return claimed_jobs([row for rows in results for row in rows])

    async def settle(
        self, operation: str, job: ClaimedJob, *, then: Sequence[Execute] = (), **kw: Any
    ) -> bool:
        """Settles the job as the worker does, its settle guarding `then`; True when the settle
        changed the job (and so `then` ran)."""
        settle: Execute = getattr(self.writes, operation)(job, **kw)
        results = await self.writer.write_background(guarded(settle, [*then, PROBE]))
        return results[-1] == [(1,)]


@pytest.fixture
def store(database: Database, writer: GroupCommitWriter, writes: Writes) -> Store:
    return Store(database, writer, writes)


async def add(db: Database, *new_jobs: NewJob, now: datetime = T0) -> list[int]:
    """Enqueues the jobs in one transaction; returns their ids in the order given."""
    async with db.begin() as conn:
        before = (await conn.execute(select(jobs.c.id))).scalars().all()
        await enqueue(conn, list(new_jobs), now=now)
        ids = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
    return [i for i in ids if i not in set(before)]


async def row(db: Database, job_id: int) -> RowMapping:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one()


async def ids_present(db: Database) -> list[int]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars())


async def kinds_present(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(jobs.c.kind).order_by(jobs.c.id))).scalars())


# --- enqueue and claim -----------------------------------------------------------------------


async def test_enqueued_job_is_claimed_with_its_payload_and_leased(database: Database, store: Store) -> None:
    payload = {"message_uuid": "m-1", "nested": {"list": [1, 2, "three"]}, "none": None}
    (job_id,) = await add(database, NewJob("deliver_message", payload))

    pending = await row(database, job_id)
    assert (pending["state"], pending["attempts"]) == (PENDING, 0)
    assert pending["run_at"] == T0 and pending["created_at"] == T0

    (job,) = await store.take("worker-a")
    assert job == ClaimedJob(
        id=job_id, kind="deliver_message", payload=payload, attempts=1, ordering_key=None
    )
    leased = await row(database, job_id)
    assert leased["state"] == LEASED
    assert leased["leased_by"] == "worker-a"
    assert leased["lease_until"] == T0 + LEASE

    assert await store.take("worker-b") == []  # a live lease is not claimed again


async def test_a_job_enqueued_through_the_writer_is_claimed_like_any(
    database: Database, store: Store, writes: Writes
) -> None:
    later = T0 + LEASE / 2
    new = [NewJob("k", {"n": 1}, ordering_key="a"), NewJob("k", {"n": 2}, run_at=later)]
    await store.writer.write_background(writes.enqueue(new, T0))
    (first,) = await store.take(now=T0)
    assert (first.kind, first.payload, first.ordering_key, first.attempts) == ("k", {"n": 1}, "a", 1)
    (second,) = await store.take(now=later)
    assert second.payload == {"n": 2} and (await row(database, second.id))["created_at"] == T0
    assert writes.enqueue([], T0) == []


async def test_the_ordering_key_is_kept(database: Database, store: Store) -> None:
    (job_id,) = await add(database, NewJob("k", {}, ordering_key="webhook:m"))
    (job,) = await store.take()
    assert (job.id, job.ordering_key) == (job_id, "webhook:m")
    assert (await row(database, job_id))["ordering_key"] == "webhook:m"


async def test_job_due_in_the_future_is_not_claimed_before_its_time(database: Database, store: Store) -> None:
    later = T0 + timedelta(minutes=5)
    (job_id,) = await add(database, NewJob("k", {}, run_at=later))

    assert await store.take(now=T0) == []
    assert await store.take(now=later - timedelta(microseconds=1)) == []
    assert [j.id for j in await store.take(now=later)] == [job_id]


async def test_claim_takes_at_most_limit_jobs_earliest_due_first(database: Database, store: Store) -> None:
    ids = await add(
        database,
        NewJob("k", {"n": 0}, run_at=T0 - timedelta(seconds=1)),
        NewJob("k", {"n": 1}, run_at=T0 - timedelta(seconds=3)),
        NewJob("k", {"n": 2}, run_at=T0 - timedelta(seconds=2)),
        NewJob("k", {"n": 3}, run_at=T0 - timedelta(seconds=3)),
    )
    first = await store.take(limit=2)
    # The two due earliest (run_at -3s: ids[1] and ids[3]); returned sorted by id.
    assert [j.id for j in first] == [ids[1], ids[3]]
    second = await store.take(limit=2)
    assert [j.id for j in second] == [ids[0], ids[2]]
    assert await store.take(limit=2) == []


async def test_empty_enqueue_writes_nothing(database: Database, store: Store) -> None:
    assert await add(database) == []
    assert await store.take() == []


# --- leases and fencing ----------------------------------------------------------------------


async def test_expired_lease_lets_another_worker_claim_and_fences_the_old_holder(
    database: Database, store: Store
) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (old,) = await store.take("worker-a", now=T0)

    # Still within the lease: nobody else gets it.
    assert await store.take("worker-b", now=T0 + LEASE) == []

    after_expiry = T0 + LEASE + timedelta(seconds=1)
    (new,) = await store.take("worker-b", now=after_expiry)
    assert (new.id, new.attempts) == (job_id, 2)
    reclaimed = await row(database, job_id)
    assert reclaimed["leased_by"] == "worker-b"
    assert reclaimed["lease_until"] == after_expiry + LEASE

    # The old holder wakes up: none of its settlements may touch the job any more.
    assert await store.settle("complete", old) is False
    assert await store.settle("retry", old, now=after_expiry, delay=LEASE, error="x") is False
    assert await store.settle("bury", old, now=after_expiry, error="x") is False
    assert dict(await row(database, job_id)) == dict(reclaimed)

    assert await store.settle("complete", new) is True
    assert await ids_present(database) == []


async def test_a_fenced_settle_skips_the_writes_it_guards_and_a_held_one_applies_them(
    database: Database, store: Store, writes: Writes
) -> None:
    await add(database, NewJob("k", {}))
    (old,) = await store.take("worker-a", now=T0)
    after_expiry = T0 + LEASE + timedelta(seconds=1)
    (new,) = await store.take("worker-b", now=after_expiry)

    def note(what: str) -> list[Execute]:
        return writes.enqueue([NewJob(what, {}, run_at=T0 + timedelta(days=365))], after_expiry)

    assert await store.settle("complete", old, then=note("late-done")) is False
    assert await store.settle("bury", old, now=after_expiry, error="x", then=note("late-dead")) is False
    assert await kinds_present(database) == ["k"]
    assert await store.settle("complete", new, then=note("on-time")) is True
    assert await kinds_present(database) == ["on-time"]  # the job done, deleted


async def test_expired_leases_come_before_pending_jobs_within_one_limit(
    database: Database, store: Store
) -> None:
    abandoned = await add(database, NewJob("k", {"n": 0}), NewJob("k", {"n": 1}))
    await store.take("worker-a", now=T0)  # both leased; worker-a then dies
    later = T0 + LEASE + timedelta(seconds=1)
    pending = await add(database, NewJob("k", {"n": 2}), NewJob("k", {"n": 3}), now=T0)

    first = await store.take("worker-b", now=later, limit=3)
    assert [j.id for j in first] == [*abandoned, pending[0]]
    assert [j.attempts for j in first] == [2, 2, 1]
    assert [j.id for j in await store.take("worker-b", now=later, limit=3)] == [pending[1]]


async def test_expired_leases_alone_fill_a_limit(database: Database, store: Store) -> None:
    abandoned = await add(database, *(NewJob("k", {"n": n}) for n in range(3)))
    await store.take("worker-a", now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    pending = await add(database, NewJob("k", {"n": 3}), now=T0)

    assert [j.id for j in await store.take("worker-b", now=later, limit=2)] == abandoned[:2]
    assert (await row(database, pending[0]))["state"] == PENDING
    assert [j.id for j in await store.take("worker-b", now=later, limit=2)] == [abandoned[2], pending[0]]


async def test_a_job_is_settled_only_once(database: Database, store: Store) -> None:
    await add(database, NewJob("k", {}))
    (job,) = await store.take()
    assert await store.settle("complete", job) is True
    assert await store.settle("complete", job) is False
    assert await store.settle("bury", job, now=T0, error="late") is False
    assert await ids_present(database) == []


async def test_retry_puts_the_job_back_after_the_delay(database: Database, store: Store) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await store.take(now=T0)
    delay = timedelta(seconds=42)
    assert await store.settle("retry", job, now=T0, delay=delay, error="HTTP 503") is True

    waiting = await row(database, job_id)
    assert (waiting["state"], waiting["run_at"], waiting["lease_until"]) == (PENDING, T0 + delay, None)
    assert (waiting["last_error"], waiting["attempts"]) == ("HTTP 503", 1)

    assert await store.take(now=T0 + delay - timedelta(seconds=1)) == []
    (again,) = await store.take(now=T0 + delay)
    assert (again.id, again.attempts) == (job_id, 2)


async def test_postpone_puts_the_job_back_with_its_attempt_given_back(
    database: Database, store: Store
) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await store.take(now=T0)
    delay = timedelta(seconds=2)
    assert await store.settle("postpone", job, now=T0, delay=delay, reason="over the rate") is True

    waiting = await row(database, job_id)
    assert (waiting["state"], waiting["run_at"], waiting["attempts"]) == (PENDING, T0 + delay, 0)
    (again,) = await store.take(now=T0 + delay)
    assert (again.id, again.attempts) == (job_id, 1)  # the postponed run did not count


async def test_bury_makes_the_job_dead_for_good(database: Database, store: Store) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await store.take()
    assert await store.settle("bury", job, now=T0, error="gave up") is True
    dead = await row(database, job_id)
    assert (dead["state"], dead["last_error"], dead["finished_at"]) == (DEAD, "gave up", T0)
    assert await store.take(now=T0 + timedelta(days=1)) == []


# --- ordering keys ---------------------------------------------------------------------------


async def test_same_ordering_key_runs_one_at_a_time_oldest_first(database: Database, store: Store) -> None:
    first, second, other, free = await add(
        database,
        NewJob("k", {}, ordering_key="a"),
        NewJob("k", {}, ordering_key="a"),
        NewJob("k", {}, ordering_key="b"),
        NewJob("k", {}),
    )
    # While `first` is pending, `second` is held back; other keys and unkeyed jobs are not.
    claimed = await store.take()
    assert [j.id for j in claimed] == [first, other, free]
    assert await store.take() == []  # `first` is leased: `second` still waits

    assert await store.settle("complete", claimed[0]) is True
    assert [j.id for j in await store.take()] == [second]


async def test_a_job_waiting_for_its_retry_still_holds_back_later_jobs_of_its_key(
    database: Database, store: Store
) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    (job,) = await store.take(now=T0)
    assert await store.settle("retry", job, now=T0, delay=timedelta(minutes=1), error="try again")

    # `first` is pending but not due; `second` is due but must not overtake it.
    assert await store.take(now=T0 + timedelta(seconds=30)) == []
    (retry,) = await store.take(now=T0 + timedelta(minutes=1))
    assert retry.id == first
    assert await store.settle("complete", retry)
    assert [j.id for j in await store.take(now=T0 + timedelta(minutes=1))] == [second]


async def test_an_earlier_job_scheduled_later_holds_back_its_key(database: Database, store: Store) -> None:
    first, second = await add(
        database,
        NewJob("k", {}, ordering_key="a", run_at=T0 + timedelta(minutes=1)),
        NewJob("k", {}, ordering_key="a"),
    )
    assert await store.take(now=T0) == []
    assert [j.id for j in await store.take(now=T0 + timedelta(minutes=1))] == [first]
    assert (await row(database, second))["state"] == PENDING


async def test_a_dead_earlier_job_no_longer_holds_back_its_key(database: Database, store: Store) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    (job,) = await store.take()
    assert job.id == first
    assert await store.take() == []
    assert await store.settle("bury", job, now=T0, error="dead")
    assert [j.id for j in await store.take()] == [second]


async def test_an_expired_lease_still_holds_back_its_key_and_is_claimed_first(
    database: Database, store: Store
) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    await store.take("worker-a", now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    # One claim: its expired-lease statement retakes `first`, and its pending one must not then
    # take `second` beside it.
    assert [j.id for j in await store.take("worker-b", now=later)] == [first]
    assert await store.take("worker-b", now=later) == []
    assert (await row(database, second))["state"] == PENDING


# --- retry policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 20.0), (12, 20.0), (60, 20.0)],
)
def test_retry_delay_is_equal_jitter_between_half_and_the_capped_ceiling(
    attempts: int, ceiling: float
) -> None:
    policy = RetryPolicy(max_attempts=99, base_seconds=1.0, max_seconds=20.0, jitter=random.Random(7))
    delays = [policy.delay(attempts).total_seconds() for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    # The random half really spreads: both ends of the range are approached.
    assert min(delays) < ceiling / 2 + ceiling * 0.05
    assert max(delays) > ceiling - ceiling * 0.05


def test_retry_delay_is_reproducible_with_a_seeded_random() -> None:
    def sequence(seed: int) -> list[timedelta]:
        policy = RetryPolicy(max_attempts=9, base_seconds=0.5, max_seconds=60.0, jitter=random.Random(seed))
        return [policy.delay(a) for a in range(1, 9)]

    assert sequence(123) == sequence(123)
    assert sequence(123) != sequence(124)


def test_retry_delay_for_very_many_attempts_stays_at_the_cap() -> None:
    # Long retry schedules (thousands of attempts at the cap) must not overflow the float maths.
    policy = RetryPolicy(max_attempts=5000, base_seconds=1.0, max_seconds=600.0, jitter=random.Random(1))
    for attempts in (1024, 1025, 5000):
        assert timedelta(seconds=300) <= policy.delay(attempts) <= timedelta(seconds=600)


# --- what stays ------------------------------------------------------------------------------


async def test_done_jobs_are_deleted_and_dead_ones_kept(database: Database, store: Store) -> None:
    done, dead, leased, pending = await add(database, *(NewJob("k", {"n": n}) for n in range(4)))
    claimed = {j.id: j for j in await store.take(limit=3)}
    assert await store.settle("complete", claimed[done])
    assert await store.settle("bury", claimed[dead], now=T0, error="kept for replay")
    assert leased in claimed and pending not in claimed

    assert await ids_present(database) == [dead, leased, pending]
    kept = await row(database, dead)
    assert (kept["state"], kept["finished_at"], kept["last_error"]) == (DEAD, T0, "kept for replay")


async def test_the_id_of_a_deleted_job_is_never_given_to_another(database: Database, store: Store) -> None:
    """SQLite would reuse the highest id once its row is gone, were `jobs` not AUTOINCREMENT."""
    (first,) = await add(database, NewJob("k", {}))
    (job,) = await store.take()
    assert await store.settle("complete", job)
    (second,) = await add(database, NewJob("k", {}))
    assert second > first


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL picks its plan by table size
async def test_a_claim_walks_the_partial_indexes_of_leased_and_pending_jobs(
    database: Database, writes: Writes, backend: str
) -> None:
    """SQLite uses a partial index only when the query names its state as the index does."""
    (claim,) = writes.claim(worker_id="w", limit=10, now=T0, lease=LEASE)
    async with database.read() as conn:
        plan = [row[3] for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + claim.sql, claim.params)]
    assert any("USING INDEX ix_jobs_leased_until" in step for step in plan), plan
    assert any("USING INDEX ix_jobs_pending_run_at" in step for step in plan), plan


# --- concurrency -----------------------------------------------------------------------------


async def test_parallel_claimers_never_claim_the_same_job_and_together_claim_all(
    database: Database, database_url: str, writes: Writes, backend: str
) -> None:
    count = 60
    ids = await add(database, *(NewJob("k", {"n": n}) for n in range(count)))
    claimers = [Database(database_url) for _ in range(6)]
    writers = [GroupCommitWriter(db, max_batch=64, window_seconds=0) for db in claimers]
    for claimer_writer in writers:
        claimer_writer.start()
    # On PostgreSQL each claim holds its row locks a moment, so that the others run into them.
    hold = [Execute("SELECT pg_sleep(0.005)", ())] if backend == "postgresql" else []

    async def claimer(index: int, group_commit: GroupCommitWriter) -> list[int]:
        got: list[int] = []
        while True:
            statements = writes.claim(worker_id=f"w{index}", limit=4, now=T0, lease=LEASE)
            results = await group_commit.write_background([*statements, *hold])
            batch = claimed_jobs([row for rows in results for row in rows])
            if not batch:
                return got
            got.extend(job.id for job in batch)

    try:
        results = await asyncio.gather(*(claimer(i, w) for i, w in enumerate(writers)))
    finally:
        for claimer_writer in writers:
            await claimer_writer.stop()
        for db in claimers:
            await db.dispose()

    everything = [job_id for result in results for job_id in result]
    assert len(everything) == len(set(everything)), "a job was claimed twice"
    assert sorted(everything) == ids
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(jobs.c.id, jobs.c.attempts, jobs.c.leased_by))).all()
    assert all(r.attempts == 1 for r in rows)
    owner = {job_id: f"w{i}" for i, result in enumerate(results) for job_id in result}
    assert all(r.leased_by == owner[r.id] for r in rows)
    if backend == "postgresql":
        # SKIP LOCKED lets claimers work side by side instead of queueing behind one another.
        assert sum(1 for result in results if result) >= 2


async def test_a_claimer_skips_rows_another_open_transaction_holds(
    database: Database, store: Store, writes: Writes, backend: str
) -> None:
    first, second = await add(database, NewJob("k", {"n": 1}), NewJob("k", {"n": 2}))
    # The holder runs the very claim statements the worker sends, in a transaction it keeps open.
    async with database.begin() as conn:
        held: list[tuple[Any, ...]] = []
        for statement in writes.claim(worker_id="a", limit=1, now=T0, lease=LEASE):
            held.extend(tuple(r) for r in (await conn.exec_driver_sql(statement.sql, statement.params)).all())
        assert [j.id for j in claimed_jobs(held)] == [first]
        contender = asyncio.create_task(store.take("b", limit=10))
        if backend == "postgresql":
            # Not blocked by the uncommitted lease: the locked row is skipped, the next one taken.
            got = await asyncio.wait_for(asyncio.shield(contender), timeout=10)
            assert [j.id for j in got] == [second]
    # SQLite has one writer: the contender waited for the holder's commit, and so found `first`
    # leased (had it not waited, it would have found `first` still pending and taken it).
    got = await asyncio.wait_for(contender, timeout=30)
    assert [j.id for j in got] == [second]
    assert (await row(database, first))["leased_by"] == "a"


async def test_a_finished_job_is_never_claimed_again(database: Database, store: Store) -> None:
    await add(database, NewJob("k", {}))
    (job,) = await store.take()
    assert await store.settle("complete", job)
    assert await store.take(now=T0 + timedelta(days=1)) == []
    assert await ids_present(database) == []


async def test_a_claim_through_the_writer_is_committed_when_it_returns(
    database_url: str, store: Store
) -> None:
    # What the worker runs is leased for everyone as soon as the claim returns, not later.
    observer = Database(database_url)
    try:
        (job_id,) = await add(observer, NewJob("k", {}))
        (job,) = await store.take("w-commit")
        async with observer.read() as conn:
            state = (
                await conn.execute(text("SELECT state, leased_by FROM jobs WHERE id = :id"), {"id": job_id})
            ).one()
        assert (job.id, tuple(state)) == (job_id, (LEASED, "w-commit"))
    finally:
        await observer.dispose()
