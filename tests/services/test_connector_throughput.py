"""Per-connector throughput: deliveries keep to a connector's messages per second, waiting for a
near turn and going back to the queue (without spending an attempt) for a far one, with one
budget shared by every worker process through Redis."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from tests.conftest import empty_database, suite_settings
from tests.services.test_delivery import sms, submit, until
from tidings.channels.base import Submission
from tidings.config import ConnectorSettings, Settings
from tidings.domain.message import Message
from tidings.limits.limiter import RateLimiter
from tidings.queue.kinds import Postponed
from tidings.runtime import Role, Runtime
from tidings.services import connector_throughput
from tidings.services.accounts import create_account
from tidings.services.connector_throughput import MAX_WAIT, ConnectorThroughput, connector_rate
from tidings.services.delivery import DeliverMessages
from tidings.store.tables import jobs

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE, BURST = 5.0, 5
SENDS = 14  # more than a burst and a second's worth of waiting: some must be postponed
SLACK = 0.1  # seconds: between a turn granted and the submit it allows


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_near_turns_are_waited_for_and_far_ones_postponed(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(connector_throughput, "asyncio", SimpleNamespace(sleep=sleep))
    throughput = ConnectorThroughput(
        RateLimiter(None, clock=Clock()), {"smpp": connector_rate(2.0)}, jitter=random.Random(7)
    )
    for _ in range(4):
        await throughput.take_turn("smpp")
    assert slept == [0.5, 1.0]  # two at once (the burst), then one every half second
    with pytest.raises(Postponed) as postponed:
        await throughput.take_turn("smpp")
    assert timedelta(seconds=0.5) <= postponed.value.delay <= timedelta(seconds=0.5 + MAX_WAIT)
    for _ in range(10):
        await throughput.take_turn("simulator")  # no rate configured: never held
    assert len(slept) == 2


def with_connector(settings: Settings, name: str, **changes: object) -> Settings:
    connector = ConnectorSettings(type="simulator", delivery_delay_seconds=0, messages_per_second=RATE)
    return settings.model_copy(update={"connectors": {name: connector}, **changes})


def record_submits(runtime: Runtime, name: str, times: list[float]) -> None:
    connector = runtime.connectors.get(name)
    assert connector is not None
    original = connector.submit

    async def timed(message: Message) -> Submission:
        times.append(time.monotonic())
        return await original(message)

    connector.submit = timed  # type: ignore[method-assign]


def assert_within_rate(times: list[float]) -> None:
    """However the submits fall, no stretch of them runs faster than the rate and its burst."""
    times = sorted(times)
    assert len(times) == SENDS
    for i in range(len(times)):
        for j in range(i + BURST, len(times)):
            assert times[j] - times[i] >= (j - i + 1 - BURST) / RATE - SLACK, (i, j, times)


async def all_done(runtime: Runtime, times: list[float]) -> bool:
    """Every send submitted, and no delivery job left: each done (a done job is deleted), none
    waiting for a retry or dead."""
    async with runtime.database.read() as conn:
        left = (await conn.execute(select(jobs.c.id).where(jobs.c.kind == DeliverMessages.name))).all()
    return len(times) == SENDS and not left


@pytest.fixture
def name() -> str:
    return f"sim-{uuid.uuid4().hex[:8]}"  # a bucket of this test's own, in Redis too


@pytest.fixture
async def limited(settings: Settings, name: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(with_connector(settings, name))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_deliveries_keep_to_the_connector_rate(limited: Runtime, name: str) -> None:
    times: list[float] = []
    record_submits(limited, name, times)
    account = await create_account(limited.database, limited.box, name="t")
    for _ in range(SENDS):
        await submit(limited, account, sms(account))
    await until(lambda: all_done(limited, times), timeout=20)
    assert_within_rate(times)  # each submitted exactly once, postponed ones included


async def test_worker_processes_share_one_budget_through_redis(
    postgres_url: str, tmp_path: Path, name: str
) -> None:
    # PostgreSQL only: on SQLite one process delivers, so there is no budget to share.
    await empty_database(postgres_url)
    shared = with_connector(suite_settings(postgres_url, tmp_path), name, redis_url=REDIS_URL)
    one, two = Runtime(shared), Runtime(shared, role=Role.WORKER)
    await one.start()
    await two.start()
    times: list[float] = []
    try:
        record_submits(one, name, times)
        record_submits(two, name, times)
        account = await create_account(one.database, one.box, name="t")
        for _ in range(SENDS):
            await submit(one, account, sms(account))
        await until(lambda: all_done(one, times), timeout=20)
    finally:
        await two.stop()
        await one.stop()
    assert_within_rate(times)
