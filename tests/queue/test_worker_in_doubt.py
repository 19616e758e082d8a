"""The worker when the answer to a batch's COMMIT is lost, on the real group commit and database:
PostgreSQL behind a proxy that loses the answer and then refuses connections for a while, SQLite
with a writer process that dies.

A settle or a claim in doubt waits for the database to say what became of it, not for the job's
lease (a minute) to run out: a settle that landed is done, one that did not is written again;
the jobs of a claim that landed are given back and run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.queue.test_worker import Probe, Scripted, add, is_done, note, notes, row, until, until_done
from tests.store.commit_answer_proxy import CommitAnswerProxy
from tests.store.test_lost_commit_answer import (
    sqlite_writer_that_dies_before_answering,
    sqlite_writer_that_dies_before_committing,
)
from tidings.queue.jobs import LEASED
from tidings.queue.kinds import Done, Job, Plan
from tidings.queue.worker import Worker
from tidings.store.batch_runners import BatchRunner, PostgresBatchRunner, SqliteBatchRunner, batch_runner
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.outage import CommitInDoubt
from tidings.store.statements import Execute, Rows, Statement
from tidings.store.writes import Writes

LEASE = timedelta(seconds=60)


class OneLaneWriter(GroupCommitWriter):
    """The group commit on one runner, so that batches commit one after another. It counts the
    worker's settles and tells when the worker asks what became of a batch; while `claims` is
    clear the worker's claims wait, so that the next batch is a settle's."""

    def __init__(self, database: Database, runner: BatchRunner) -> None:
        super().__init__(database, max_batch=256, window_seconds=0)
        self._runners = [runner]
        self.claims = asyncio.Event()
        self.claims.set()
        self.settles = 0
        self.resolving = asyncio.Event()

    async def write_background(self, statements: Sequence[Statement], *, soon: bool = False) -> list[Rows]:
        if any(isinstance(s, Execute) and s.returning for s in statements):
            await self.claims.wait()
        else:
            self.settles += 1
        return await super().write_background(statements, soon=soon)

    async def resolve(self, doubt: CommitInDoubt) -> bool:
        self.resolving.set()
        return await super().resolve(doubt)


def impatient_runner(database: Database) -> PostgresBatchRunner:
    """Gives up asking at once (in_doubt_seconds) when the database is away: the batch fails in doubt."""
    return PostgresBatchRunner(database.engine, in_doubt_seconds=0.2)


def held_until(go: asyncio.Event, writes: Writes) -> Scripted:
    """A kind whose perform waits for `go`, and whose plan writes a note with the settle."""

    async def perform(job: Job[Probe]) -> str:
        await go.wait()
        return "sent"

    async def plan(job: Job[Probe], result: Any) -> Plan:
        return Plan(Done(), note(writes, job, result))

    return Scripted(perform=perform, plan=plan)


async def held_job_and_impatient_writer(
    proxied: Database, observer: Database
) -> tuple[asyncio.Event, Scripted, int, OneLaneWriter]:
    """A queued job of a kind held until the event is set, and a started writer over the proxy
    whose runner gives up asking at once."""
    go = asyncio.Event()
    kind = held_until(go, Writes(proxied.engine.dialect))
    (job_id,) = await add(observer, Scripted.new(Probe()))
    writer = OneLaneWriter(proxied, impatient_runner(proxied))
    writer.start()
    return go, kind, job_id, writer


def make_worker(database: Database, kind: Scripted, writer: GroupCommitWriter) -> Worker:
    worker = Worker(
        database,
        [kind],
        writer,
        Writes(database.engine.dialect),
        concurrency=1,
        poll_seconds=0.02,
        lease=LEASE,
    )
    worker.start()
    return worker


async def the_database_is_asked_again(proxy: CommitAnswerProxy) -> None:
    """Returns once somebody has tried to reach the database a few more times."""
    before = proxy.tries
    await until(lambda: proxy.tries >= before + 3)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("landed", [True, False], ids=["committed", "aborted"])
async def test_a_settle_in_doubt_is_written_once_and_done_as_soon_as_the_database_is_back(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str, landed: bool
) -> None:
    go, kind, job_id, writer = await held_job_and_impatient_writer(proxied, observer)
    worker = make_worker(proxied, kind, writer)
    try:
        await until(lambda: len(kind.performed) == 1)
        writer.claims.clear()
        # The settle's COMMIT lands (or never reaches the server), and the database goes away
        # for longer than the runner asks about it.
        commit_proxy.lose_next_commit_answer(commit_reaches_server=landed, then_refuse=True)
        go.set()
        await asyncio.wait_for(writer.resolving.wait(), timeout=10)
        await the_database_is_asked_again(commit_proxy)
        assert worker._settling  # still waiting for the answer, neither written again nor dropped
        commit_proxy.accept_again()
        await until(lambda: not worker._settling)  # the lease has 60 s to go
    finally:
        writer.claims.set()
        await worker.stop(grace_seconds=1)
        await writer.stop()
    assert await is_done(observer, job_id)
    assert await notes(observer) == [{"job": job_id, "attempt": 1, "what": "sent"}]
    assert writer.settles == (1 if landed else 2)
    assert kind.attempts() == [(0, 1)]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_jobs_of_a_claim_in_doubt_run_again_as_soon_as_the_database_is_back(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str
) -> None:
    kind = Scripted()
    (job_id,) = await add(observer, Scripted.new(Probe()))
    writer = OneLaneWriter(proxied, impatient_runner(proxied))
    writer.start()
    commit_proxy.lose_next_commit_answer(then_refuse=True)  # the first claim's
    # The worker's own transactions (taking jobs back) go straight to the database: only the
    # claim's COMMIT goes through the proxy.
    worker = make_worker(observer, kind, writer)
    try:
        await asyncio.wait_for(writer.resolving.wait(), timeout=10)
        await the_database_is_asked_again(commit_proxy)
        leased = await row(observer, job_id)
        assert (leased["state"], leased["leased_by"], leased["attempts"]) == (LEASED, worker.worker_id, 1)
        assert kind.performed == []  # its rows were lost with the answer
        commit_proxy.accept_again()
        await until_done(observer, job_id)  # the lease has 60 s to go
    finally:
        await worker.stop(grace_seconds=1)
        await writer.stop()
    assert kind.attempts() == [(0, 2)]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("doubt", ["settle", "claim"])
async def test_a_stop_does_not_wait_for_the_database_to_resolve_a_doubt(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str, doubt: str
) -> None:
    """Past its grace period a stop gives up asking, and the job is left to its lease."""
    go, kind, job_id, writer = await held_job_and_impatient_writer(proxied, observer)
    if doubt == "claim":
        commit_proxy.lose_next_commit_answer(then_refuse=True)
    worker = make_worker(observer, kind, writer)
    try:
        if doubt == "settle":
            await until(lambda: len(kind.performed) == 1)
            writer.claims.clear()
            commit_proxy.lose_next_commit_answer(then_refuse=True)
            go.set()
        await asyncio.wait_for(writer.resolving.wait(), timeout=10)
        writer.claims.set()
        await asyncio.wait_for(worker.stop(grace_seconds=0.5), timeout=5)
    finally:
        writer.claims.set()
        commit_proxy.accept_again()
        await worker.stop(grace_seconds=1)
        await writer.stop()
    if doubt == "settle":
        assert await is_done(observer, job_id)
    else:
        left = await row(observer, job_id)
        assert (left["state"], left["leased_by"]) == (LEASED, worker.worker_id)


async def sqlite_writer(database: Database) -> tuple[OneLaneWriter, SqliteBatchRunner]:
    runner = batch_runner(database)
    assert isinstance(runner, SqliteBatchRunner)
    writer = OneLaneWriter(database, runner)
    writer.start()
    return writer, runner


DIES = {
    "committed": lambda runner: sqlite_writer_that_dies_before_answering(runner._path),
    "aborted": lambda runner: sqlite_writer_that_dies_before_committing(),
}


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("dies", ["committed", "aborted"])
async def test_sqlite_a_settle_whose_writer_died_is_written_once(
    database: Database, observer: Database, backend: str, dies: str
) -> None:
    """The runner's commit marker tells at once whether the dead process committed the settle;
    one it did not is written again by the next writer process."""
    go = asyncio.Event()
    kind = held_until(go, Writes(database.engine.dialect))
    (job_id,) = await add(observer, Scripted.new(Probe()))
    writer, runner = await sqlite_writer(database)
    worker = make_worker(database, kind, writer)
    try:
        await until(lambda: len(kind.performed) == 1)
        writer.claims.clear()
        await runner.discard()
        dying: Callable[[SqliteBatchRunner], Any] = DIES[dies]
        runner._process = await dying(runner)
        go.set()
        await until_done(observer, job_id)
        await until(lambda: not worker._settling)
    finally:
        writer.claims.set()
        await worker.stop(grace_seconds=1)
        await writer.stop()
    assert await notes(observer) == [{"job": job_id, "attempt": 1, "what": "sent"}]
    assert writer.settles == 1
    assert not writer.resolving.is_set()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_the_jobs_of_a_claim_whose_rows_were_lost_run_again(
    database: Database, observer: Database, backend: str
) -> None:
    kind = Scripted()
    (job_id,) = await add(observer, Scripted.new(Probe()))
    writer, runner = await sqlite_writer(database)
    runner._process = await sqlite_writer_that_dies_before_answering(runner._path)  # the first claim's
    worker = make_worker(database, kind, writer)
    try:
        await until_done(observer, job_id)  # the lease has 60 s to go
    finally:
        await worker.stop(grace_seconds=1)
        await writer.stop()
    assert kind.attempts() == [(0, 2)]
