"""The durable job store: enqueue, claim with a lease, fencing, retries, ordering keys, purging.

Time is passed in explicitly (`now=`), so lease expiry and retry delays are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from tidings.queue.jobs import (
    DEAD,
    DONE,
    LEASED,
    PENDING,
    ClaimedJob,
    NewJob,
    RetryPolicy,
    bury,
    claim,
    complete,
    enqueue,
    purge_finished,
    retry_later,
)
from tidings.store.database import Database
from tidings.store.tables import jobs

LEASE = timedelta(seconds=30)
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


async def add(db: Database, *new_jobs: NewJob, now: datetime = T0) -> list[int]:
    """Enqueues the jobs in one transaction; returns their ids in the order given."""
    async with db.begin() as conn:
        before = (await conn.execute(select(jobs.c.id))).scalars().all()
        await enqueue(conn, list(new_jobs), now=now)
        ids = (await conn.execute(select(jobs.c.id).order_by(jobs.c.id))).scalars().all()
    return [i for i in ids if i not in set(before)]


async def take(db: Database, worker: str = "w1", *, now: datetime = T0, limit: int = 10) -> list[ClaimedJob]:
    async with db.begin() as conn:
        return await claim(conn, worker_id=worker, limit=limit, now=now, lease=LEASE)


async def row(db: Database, job_id: int) -> RowMapping:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one()


async def settle(db: Database, operation: Any, job: ClaimedJob, **kwargs: Any) -> bool:
    async with db.begin() as conn:
        return bool(await operation(conn, job, **kwargs))


# --- enqueue and claim -----------------------------------------------------------------------


async def test_enqueued_job_is_claimed_with_its_payload_and_leased(database: Database) -> None:
    payload = {"message_uuid": "m-1", "nested": {"list": [1, 2, "three"]}, "none": None}
    (job_id,) = await add(database, NewJob("deliver_message", payload))

    pending = await row(database, job_id)
    assert (pending["state"], pending["attempts"]) == (PENDING, 0)
    assert pending["run_at"] == T0 and pending["created_at"] == T0

    (job,) = await take(database, "worker-a")
    assert job == ClaimedJob(
        id=job_id, kind="deliver_message", payload=payload, attempts=1, ordering_key=None
    )
    leased = await row(database, job_id)
    assert leased["state"] == LEASED
    assert leased["leased_by"] == "worker-a"
    assert leased["lease_until"] == T0 + LEASE

    assert await take(database, "worker-b") == []  # a live lease is not claimed again


async def test_the_ordering_key_is_kept(database: Database) -> None:
    (job_id,) = await add(database, NewJob("k", {}, ordering_key="webhook:m"))
    (job,) = await take(database)
    assert (job.id, job.ordering_key) == (job_id, "webhook:m")
    assert (await row(database, job_id))["ordering_key"] == "webhook:m"


async def test_job_due_in_the_future_is_not_claimed_before_its_time(database: Database) -> None:
    later = T0 + timedelta(minutes=5)
    (job_id,) = await add(database, NewJob("k", {}, run_at=later))

    assert await take(database, now=T0) == []
    assert await take(database, now=later - timedelta(microseconds=1)) == []
    assert [j.id for j in await take(database, now=later)] == [job_id]


async def test_claim_takes_at_most_limit_jobs_earliest_due_first(database: Database) -> None:
    ids = await add(
        database,
        NewJob("k", {"n": 0}, run_at=T0 - timedelta(seconds=1)),
        NewJob("k", {"n": 1}, run_at=T0 - timedelta(seconds=3)),
        NewJob("k", {"n": 2}, run_at=T0 - timedelta(seconds=2)),
        NewJob("k", {"n": 3}, run_at=T0 - timedelta(seconds=3)),
    )
    first = await take(database, limit=2)
    # The two due earliest (run_at -3s: ids[1] and ids[3]); returned sorted by id.
    assert [j.id for j in first] == [ids[1], ids[3]]
    second = await take(database, limit=2)
    assert [j.id for j in second] == [ids[0], ids[2]]
    assert await take(database, limit=2) == []


async def test_empty_enqueue_writes_nothing(database: Database) -> None:
    assert await add(database) == []
    assert await take(database) == []


# --- leases and fencing ----------------------------------------------------------------------


async def test_expired_lease_lets_another_worker_claim_and_fences_the_old_holder(database: Database) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (old,) = await take(database, "worker-a", now=T0)

    # Still within the lease: nobody else gets it.
    assert await take(database, "worker-b", now=T0 + LEASE) == []

    after_expiry = T0 + LEASE + timedelta(seconds=1)
    (new,) = await take(database, "worker-b", now=after_expiry)
    assert (new.id, new.attempts) == (job_id, 2)
    reclaimed = await row(database, job_id)
    assert reclaimed["leased_by"] == "worker-b"
    assert reclaimed["lease_until"] == after_expiry + LEASE

    # The old holder wakes up: none of its settlements may touch the job any more.
    assert await settle(database, complete, old, now=after_expiry) is False
    assert await settle(database, retry_later, old, now=after_expiry, delay=LEASE, error="x") is False
    assert await settle(database, bury, old, now=after_expiry, error="x") is False
    assert (await row(database, job_id))["state"] == LEASED

    assert await settle(database, complete, new, now=after_expiry) is True
    done = await row(database, job_id)
    assert (done["state"], done["finished_at"], done["lease_until"]) == (DONE, after_expiry, None)


async def test_expired_leases_come_before_pending_jobs_within_one_limit(database: Database) -> None:
    abandoned = await add(database, NewJob("k", {"n": 0}), NewJob("k", {"n": 1}))
    await take(database, "worker-a", now=T0)  # both leased; worker-a then dies
    later = T0 + LEASE + timedelta(seconds=1)
    pending = await add(database, NewJob("k", {"n": 2}), NewJob("k", {"n": 3}), now=T0)

    first = await take(database, "worker-b", now=later, limit=3)
    assert [j.id for j in first] == [*abandoned, pending[0]]
    assert [j.attempts for j in first] == [2, 2, 1]
    assert [j.id for j in await take(database, "worker-b", now=later, limit=3)] == [pending[1]]


async def test_a_job_is_settled_only_once(database: Database) -> None:
    await add(database, NewJob("k", {}))
    (job,) = await take(database)
    assert await settle(database, complete, job, now=T0) is True
    assert await settle(database, complete, job, now=T0) is False
    assert await settle(database, bury, job, now=T0, error="late") is False
    assert (await row(database, job.id))["state"] == DONE


async def test_retry_later_puts_the_job_back_after_the_delay(database: Database) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await take(database, now=T0)
    delay = timedelta(seconds=42)
    assert await settle(database, retry_later, job, now=T0, delay=delay, error="HTTP 503") is True

    waiting = await row(database, job_id)
    assert (waiting["state"], waiting["run_at"], waiting["lease_until"]) == (PENDING, T0 + delay, None)
    assert (waiting["last_error"], waiting["attempts"]) == ("HTTP 503", 1)

    assert await take(database, now=T0 + delay - timedelta(seconds=1)) == []
    (again,) = await take(database, now=T0 + delay)
    assert (again.id, again.attempts) == (job_id, 2)


async def test_bury_makes_the_job_dead_for_good(database: Database) -> None:
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await take(database)
    assert await settle(database, bury, job, now=T0, error="gave up") is True
    dead = await row(database, job_id)
    assert (dead["state"], dead["last_error"], dead["finished_at"]) == (DEAD, "gave up", T0)
    assert await take(database, now=T0 + timedelta(days=1)) == []


# --- ordering keys ---------------------------------------------------------------------------


async def test_same_ordering_key_runs_one_at_a_time_oldest_first(database: Database) -> None:
    first, second, other, free = await add(
        database,
        NewJob("k", {}, ordering_key="a"),
        NewJob("k", {}, ordering_key="a"),
        NewJob("k", {}, ordering_key="b"),
        NewJob("k", {}),
    )
    # While `first` is pending, `second` is held back; other keys and unkeyed jobs are not.
    claimed = await take(database)
    assert [j.id for j in claimed] == [first, other, free]
    assert await take(database) == []  # `first` is leased: `second` still waits

    assert await settle(database, complete, claimed[0], now=T0) is True
    assert [j.id for j in await take(database)] == [second]


async def test_a_job_waiting_for_its_retry_still_holds_back_later_jobs_of_its_key(database: Database) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    (job,) = await take(database, now=T0)
    await settle(database, retry_later, job, now=T0, delay=timedelta(minutes=1), error="try again")

    # `first` is pending but not due; `second` is due but must not overtake it.
    assert await take(database, now=T0 + timedelta(seconds=30)) == []
    (retry,) = await take(database, now=T0 + timedelta(minutes=1))
    assert retry.id == first
    await settle(database, complete, retry, now=T0 + timedelta(minutes=1))
    assert [j.id for j in await take(database, now=T0 + timedelta(minutes=1))] == [second]


async def test_an_earlier_job_scheduled_later_holds_back_its_key(database: Database) -> None:
    _, second = await add(
        database,
        NewJob("k", {}, ordering_key="a", run_at=T0 + timedelta(minutes=1)),
        NewJob("k", {}, ordering_key="a"),
    )
    assert await take(database, now=T0) == []
    assert second not in [j.id for j in await take(database, now=T0)]


async def test_a_dead_earlier_job_no_longer_holds_back_its_key(database: Database) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    (job,) = await take(database)
    assert job.id == first
    assert await take(database) == []
    await settle(database, bury, job, now=T0, error="dead")
    assert [j.id for j in await take(database)] == [second]


async def test_an_expired_lease_still_holds_back_its_key_and_is_claimed_first(database: Database) -> None:
    first, second = await add(database, NewJob("k", {}, ordering_key="a"), NewJob("k", {}, ordering_key="a"))
    await take(database, "worker-a", now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    assert [j.id for j in await take(database, "worker-b", now=later)] == [first]
    assert second not in [j.id for j in await take(database, "worker-b", now=later)]


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


# --- purging ---------------------------------------------------------------------------------


async def test_purge_finished_removes_only_old_done_jobs(database: Database) -> None:
    old_done, new_done, old_dead, leased, pending = await add(
        database, *(NewJob("k", {"n": n}) for n in range(5))
    )
    claimed = {j.id: j for j in await take(database, limit=4)}
    day_ago = T0 - timedelta(days=1)
    await settle(database, complete, claimed[old_done], now=day_ago)
    await settle(database, complete, claimed[new_done], now=T0)
    await settle(database, bury, claimed[old_dead], now=day_ago, error="kept for replay")
    assert leased in claimed and pending not in claimed

    async with database.begin() as conn:
        removed = await purge_finished(conn, older_than=T0 - timedelta(hours=1), limit=100)
    assert removed == 1
    async with database.engine.connect() as conn:
        left = set((await conn.execute(select(jobs.c.id))).scalars())
    assert left == {new_done, old_dead, pending, leased}


# --- concurrency -----------------------------------------------------------------------------


async def test_parallel_claimers_never_claim_the_same_job_and_together_claim_all(
    database: Database, database_url: str, backend: str
) -> None:
    count = 60
    ids = await add(database, *(NewJob("k", {"n": n}) for n in range(count)))
    claimers = [Database(database_url) for _ in range(6)]

    async def claimer(index: int, db: Database) -> list[int]:
        got: list[int] = []
        while True:
            async with db.begin() as conn:
                batch = await claim(conn, worker_id=f"w{index}", limit=4, now=T0, lease=LEASE)
                # Hold the row locks a moment so that the other claimers run into them.
                await asyncio.sleep(0.005)
            if not batch:
                return got
            got.extend(job.id for job in batch)

    try:
        results = await asyncio.gather(*(claimer(i, db) for i, db in enumerate(claimers)))
    finally:
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
    database: Database, database_url: str, backend: str
) -> None:
    first, second = await add(database, NewJob("k", {"n": 1}), NewJob("k", {"n": 2}))
    other = Database(database_url)
    try:
        async with database.begin() as conn:
            held = await claim(conn, worker_id="a", limit=1, now=T0, lease=LEASE)
            assert [j.id for j in held] == [first]
            contender = asyncio.create_task(take(other, "b", limit=10))
            if backend == "postgresql":
                # Not blocked by the uncommitted lease: the locked row is skipped, the next one taken.
                got = await asyncio.wait_for(contender, timeout=10)
                assert [j.id for j in got] == [second]
            else:
                # SQLite has one writer: the contender waits for the holder's commit.
                await asyncio.sleep(0.05)
                assert not contender.done()
        got = await asyncio.wait_for(contender, timeout=10)
        assert [j.id for j in got] == [second]
    finally:
        await other.dispose()


async def test_claim_does_not_touch_jobs_settled_meanwhile(database: Database) -> None:
    # A row that another worker already finished is not resurrected by a stale view of it.
    (job_id,) = await add(database, NewJob("k", {}))
    (job,) = await take(database)
    await settle(database, complete, job, now=T0)
    async with database.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job_id).values(lease_until=T0 - LEASE))
    assert await take(database, now=T0 + timedelta(days=1)) == []
