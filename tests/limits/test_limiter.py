"""The rate limiter: GCRA buckets in this process and in (real, local) Redis, shared by several
limiters as by several processes, and falling back to this process when Redis is away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tidings.limits.gcra import Rate
from tidings.limits.limiter import RateLimiter
from tidings.limits.local import SWEEP_EVERY, LocalRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there


def redis_key(prefix: str, bucket: str) -> str:
    """Where a bucket lives in Redis: behind the prefix, which is every key's hash tag."""
    return "{" + prefix + "}" + bucket


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = f"tidings-test:{uuid.uuid4().hex}:"
    yield value
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=redis_key(value, "*"))]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimiter]:
    built = RateLimiter.from_url(REDIS_URL if request.param == "redis" else None, prefix=prefix)
    yield built
    await built.close()


async def test_a_burst_is_allowed_then_refused_with_the_time_to_wait(limiter: RateLimiter) -> None:
    rate = Rate(per_second=2, burst=3)
    decisions = [await limiter.acquire([("acct", rate)]) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # Three taken at once at two a second: the next unit fits half a second later.
    assert 0.4 < decisions[3].wait <= 0.5


async def test_a_refused_request_takes_nothing_and_succeeds_after_its_wait(limiter: RateLimiter) -> None:
    rate = Rate(per_second=20, burst=1)
    assert (await limiter.acquire([("k", rate)])).allowed
    refused = await limiter.acquire([("k", rate)])
    assert not refused.allowed
    again = await limiter.acquire([("k", rate)])
    assert not again.allowed and again.wait <= refused.wait  # the refusal did not push it back
    await asyncio.sleep(again.wait + 0.005)
    assert (await limiter.acquire([("k", rate)])).allowed


async def test_buckets_taken_together_are_taken_all_or_none(limiter: RateLimiter) -> None:
    tight, loose = Rate(per_second=1, burst=1), Rate(per_second=1, burst=5)
    assert (await limiter.acquire([("app", tight), ("account", loose)])).allowed
    assert not (await limiter.acquire([("app", tight), ("account", loose)])).allowed
    # The refusal took nothing from the account's bucket: four of its five remain.
    assert [(await limiter.acquire([("account", loose)])).allowed for _ in range(5)] == [True] * 4 + [False]


async def test_a_caller_that_accepts_a_wait_gets_a_slot_in_turn(limiter: RateLimiter) -> None:
    rate = Rate(per_second=10, burst=1)
    slots = [await limiter.acquire([("connector", rate)], max_wait=0.25) for _ in range(4)]
    assert [s.allowed for s in slots] == [True, True, True, False]
    waits = [s.wait for s in slots[:3]]
    assert waits[0] == 0 and 0.09 < waits[1] <= 0.1 and 0.19 < waits[2] <= 0.2
    assert 0.04 < slots[3].wait <= 0.05  # until the fourth slot is within the accepted wait


async def test_a_refund_gives_the_unit_back(limiter: RateLimiter) -> None:
    rate = Rate(per_second=0.1, burst=2)
    assert (await limiter.acquire([("key", rate)])).allowed
    await limiter.refund([("key", rate)])
    assert (await limiter.acquire([("key", rate)])).allowed
    assert (await limiter.acquire([("key", rate)])).allowed
    assert not (await limiter.acquire([("key", rate)])).allowed


async def test_a_check_takes_nothing(limiter: RateLimiter) -> None:
    rate = Rate(per_second=1, burst=2)
    for _ in range(3):
        assert (await limiter.check([("k", rate)])).allowed
    assert (await limiter.acquire([("k", rate)])).allowed
    assert (await limiter.acquire([("k", rate)])).allowed
    refused = await limiter.check([("k", rate), ("other", rate)])
    assert not refused.allowed and 0.9 < refused.wait <= 1.0
    assert (await limiter.check([("other", rate)])).allowed


async def test_the_keys_of_any_call_hash_to_one_cluster_slot(prefix: str) -> None:
    """Redis Cluster runs a script only on keys of one slot: every bucket key carries the prefix
    as its hash tag, whatever the buckets' names (braces in them included)."""
    limiter = RateLimiter.from_url(REDIS_URL, prefix=prefix)
    rate = Rate(per_second=0.01, burst=5)  # a key lives until its bucket refills: 100 s, not 1 s
    try:
        await limiter.acquire([("auth-key:abc", rate), ("auth-address:10.0.0.1", rate)])
        await limiter.acquire([("send-account:abc", rate), ("send-application:{x}", rate)])
        await limiter.acquire([("auth-application:a}b{", rate), ("auth-address:::1", rate)])
    finally:
        await limiter.close()
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=redis_key(prefix, "*"))]
    await client.aclose()
    assert len(keys) == 6
    assert {key_slot(key) for key in keys} == {key_slot(redis_key(prefix, "").encode())}
    # Without the tag the same keys would spread over slots, and a Cluster would refuse the script.
    assert len({key_slot(key.replace(b"{", b"").replace(b"}", b"")) for key in keys}) > 1


def test_a_prefix_holding_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RateLimiter.from_url(REDIS_URL, prefix="tidings:{rate}:")


async def test_redis_buckets_are_shared_and_expire(prefix: str) -> None:
    first, second = (
        RateLimiter.from_url(REDIS_URL, prefix=prefix),
        RateLimiter.from_url(REDIS_URL, prefix=prefix),
    )
    rate = Rate(per_second=1, burst=2)
    try:
        assert (await first.acquire([("shared", rate)])).allowed
        assert (await second.acquire([("shared", rate)])).allowed
        assert not (await first.acquire([("shared", rate)])).allowed
        assert not (await second.acquire([("shared", rate)])).allowed
    finally:
        await first.close()
        await second.close()
    client = Redis.from_url(REDIS_URL)
    ttl = await client.pttl(redis_key(prefix, "shared"))
    await client.aclose()
    assert 1000 < ttl <= 2001  # until both units have refilled, then Redis drops the key


async def test_without_redis_answering_limits_fall_back_to_this_process() -> None:
    limiter = RateLimiter.from_url(DEAD_REDIS_URL)
    rate = Rate(per_second=1, burst=2)
    try:
        started = time.monotonic()
        decisions = [await limiter.acquire([("k", rate)]) for _ in range(3)]
        assert time.monotonic() - started < 2  # one failed attempt, then no more waiting on Redis
        assert [d.allowed for d in decisions] == [True, True, False]
        assert not limiter.is_shared
    finally:
        await limiter.close()


def test_local_buckets_that_refilled_are_forgotten() -> None:
    clock = ManualClock()
    local = LocalRateLimiter(clock)
    rate = Rate(per_second=1, burst=1)
    for n in range(SWEEP_EVERY - 1):
        assert local.acquire_now([(f"guess-{n}", rate)]).allowed
    clock.now += 2
    assert local.acquire_now([("latest", rate)]).allowed
    assert list(local._tats) == ["latest"]
