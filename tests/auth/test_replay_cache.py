"""JWT replay caches: Redis (real, local) and the database (SQLite and PostgreSQL).

A `jti` accepted once is refused until its token expires, by every process sharing the store:
checked with two Runtimes, with two Database objects, and with a second Python process.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from tests.auth.test_jwt_attacks import Stored, assert_unauthorized, create_application, send, stored
from tidings.api.app import create_app
from tidings.auth.replay import RedisReplayCache
from tidings.auth.replay_fallback import FallbackReplayCache
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account
from tidings.services.maintenance import Maintenance
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.jwt_replays import DatabaseReplayCache
from tidings.store.tables import jwt_replays

REDIS_URL = "redis://127.0.0.1:6379/0"
RUNTIME_PREFIX = "tidings:jti:"  # what Runtime gives its RedisReplayCache


def in_a_minute() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=60)


async def delete_redis_keys(pattern: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, removed afterwards."""
    value = f"tidings-test:{uuid.uuid4().hex}:"
    yield value
    await delete_redis_keys(value + "*")


@pytest.fixture
async def redis_cache(prefix: str) -> AsyncIterator[RedisReplayCache]:
    cache = RedisReplayCache(REDIS_URL, prefix=prefix)
    yield cache
    await cache.close()


_FIRST_USE = """
import asyncio, sys
from datetime import UTC, datetime, timedelta

async def main(kind: str, url: str, jti: str, prefix: str) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=60)
    if kind == "redis":
        from tidings.auth.replay import RedisReplayCache
        cache = RedisReplayCache(url, prefix=prefix)
        print(await cache.first_use(jti, expires))
        await cache.close()
    else:
        from tidings.store.database import Database
        from tidings.store.group_commit import GroupCommitWriter
        from tidings.store.jwt_replays import DatabaseReplayCache
        database = Database(url)
        writer = GroupCommitWriter(database, max_batch=16, window_seconds=0)
        writer.start()
        print(await DatabaseReplayCache(writer).first_use(jti, expires))
        await writer.stop()
        await database.dispose()

asyncio.run(main(*sys.argv[1:]))
"""


CacheOf = Callable[[Database], DatabaseReplayCache]


async def first_use_in_another_process(kind: str, url: str, jti: str, prefix: str = "") -> bool:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FIRST_USE,
        kind,
        url,
        jti,
        prefix,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return {"True": True, "False": False}[out.decode().strip()]


# ---------------------------------------------------------------- Redis


async def test_redis_first_use_then_replay(redis_cache: RedisReplayCache) -> None:
    assert await redis_cache.first_use("app:jti-1", in_a_minute()) is True
    assert await redis_cache.first_use("app:jti-1", in_a_minute()) is False
    assert await redis_cache.first_use("app:jti-2", in_a_minute()) is True
    assert await redis_cache.first_use("other-app:jti-1", in_a_minute()) is True


async def test_redis_entry_lives_until_the_token_expires(redis_cache: RedisReplayCache, prefix: str) -> None:
    assert await redis_cache.first_use("jti", datetime.now(UTC) + timedelta(seconds=120))
    client = Redis.from_url(REDIS_URL)
    try:
        ttl_ms = await client.pttl(prefix + "jti")
    finally:
        await client.aclose()
    assert 110_000 < ttl_ms <= 120_000


async def test_redis_expiry_is_honoured(redis_cache: RedisReplayCache) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    assert await redis_cache.first_use("short", expires) is True
    assert await redis_cache.first_use("short", expires) is False
    await asyncio.sleep(1.3)
    assert await redis_cache.first_use("short", in_a_minute()) is True


async def test_redis_already_expired_token_is_still_remembered_briefly(redis_cache: RedisReplayCache) -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    assert await redis_cache.first_use("late", past) is True
    assert await redis_cache.first_use("late", past) is False


async def test_redis_concurrent_first_uses_accept_exactly_one(redis_cache: RedisReplayCache) -> None:
    results = await asyncio.gather(*(redis_cache.first_use("race", in_a_minute()) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]


async def test_redis_that_forgot_the_script_is_given_it_again(redis_cache: RedisReplayCache) -> None:
    assert await redis_cache.first_use("before", in_a_minute()) is True
    admin = Redis.from_url(REDIS_URL)
    try:
        await admin.script_flush()  # as a Redis restarted without its scripts
    finally:
        await admin.aclose()
    assert await redis_cache.first_use("after", in_a_minute()) is True
    assert await redis_cache.first_use("after", in_a_minute()) is False
    assert await redis_cache.first_use("before", in_a_minute()) is False


async def test_a_connection_redis_closed_is_opened_again_for_the_same_batch(prefix: str) -> None:
    name = f"replay-test-{uuid.uuid4().hex[:12]}"
    cache = RedisReplayCache(f"{REDIS_URL}?client_name={name}", prefix=prefix)
    admin = Redis.from_url(REDIS_URL)
    try:
        assert await cache.first_use("before", in_a_minute()) is True
        ours = [client["id"] for client in await admin.client_list() if client.get("name") == name]
        assert len(ours) == 1  # the cache's one connection, idle in its pool between batches
        await admin.client_kill_filter(_id=ours[0])
        assert await cache.first_use("after", in_a_minute()) is True
        assert await cache.first_use("before", in_a_minute()) is False
    finally:
        await admin.aclose()
        await cache.close()


async def test_redis_is_shared_with_another_process(redis_cache: RedisReplayCache, prefix: str) -> None:
    assert await redis_cache.first_use("here-first", in_a_minute()) is True
    assert await first_use_in_another_process("redis", REDIS_URL, "here-first", prefix) is False
    assert await first_use_in_another_process("redis", REDIS_URL, "there-first", prefix) is True
    assert await redis_cache.first_use("there-first", in_a_minute()) is False


async def test_two_runtimes_share_the_redis_replay_cache(tmp_path: Path) -> None:
    def runtime(name: str) -> Runtime:
        return Runtime(
            Settings(
                home=tmp_path / name,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
                redis_url=REDIS_URL,
            )
        )

    one, two = runtime("one"), runtime("two")
    jti = f"test-{uuid.uuid4().hex}"
    try:
        assert isinstance(one.replays, FallbackReplayCache) and isinstance(two.replays, FallbackReplayCache)
        assert await one.replays.first_use(jti, in_a_minute()) is True
        assert await two.replays.first_use(jti, in_a_minute()) is False
        assert await two.replays.first_use(jti + "-b", in_a_minute()) is True
        assert await one.replays.first_use(jti + "-b", in_a_minute()) is False
    finally:
        await delete_redis_keys(f"{RUNTIME_PREFIX}{jti}*")
        for each in (one, two):
            await each.replays.close()
            await each.database.dispose()


# ---------------------------------------------------------------- database


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines on one database: two processes in spirit."""
    one, two = Database(database_url), Database(database_url)
    yield one, two
    await one.dispose()
    await two.dispose()


@pytest.fixture
async def cache_of() -> AsyncIterator[Callable[[Database], DatabaseReplayCache]]:
    """A database replay cache with a running group-commit writer of its own, as a runtime has."""
    writers: list[GroupCommitWriter] = []

    def make(database: Database) -> DatabaseReplayCache:
        writer = GroupCommitWriter(database, max_batch=16, window_seconds=0)
        writer.start()
        writers.append(writer)
        return DatabaseReplayCache(writer)

    yield make
    for writer in writers:
        await writer.stop()


async def test_database_first_use_then_replay(
    databases: tuple[Database, Database], cache_of: CacheOf
) -> None:
    cache = cache_of(databases[0])
    assert await cache.first_use("app:jti-1", in_a_minute()) is True
    assert await cache.first_use("app:jti-1", in_a_minute()) is False
    assert await cache.first_use("app:jti-2", in_a_minute()) is True


async def test_database_is_shared_between_engines(
    databases: tuple[Database, Database], cache_of: CacheOf
) -> None:
    one, two = (cache_of(db) for db in databases)
    assert await one.first_use("a", in_a_minute()) is True
    assert await two.first_use("a", in_a_minute()) is False
    assert await two.first_use("b", in_a_minute()) is True
    assert await one.first_use("b", in_a_minute()) is False


async def test_database_concurrent_first_uses_accept_exactly_one(
    databases: tuple[Database, Database], cache_of: CacheOf
) -> None:
    caches = [cache_of(db) for db in databases]
    results = await asyncio.gather(*(caches[i % 2].first_use("race", in_a_minute()) for i in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_database_is_shared_with_another_process(
    databases: tuple[Database, Database], database_url: str, cache_of: CacheOf
) -> None:
    cache = cache_of(databases[0])
    assert await cache.first_use("here-first", in_a_minute()) is True
    assert await first_use_in_another_process("database", database_url, "here-first") is False
    assert await first_use_in_another_process("database", database_url, "there-first") is True
    assert await cache.first_use("there-first", in_a_minute()) is False


async def test_database_purge_removes_only_expired_entries(
    databases: tuple[Database, Database], cache_of: CacheOf
) -> None:
    cache = cache_of(databases[0])
    assert await cache.first_use("expired", datetime.now(UTC) - timedelta(seconds=1))
    assert await cache.first_use("live", in_a_minute())
    purged = await Maintenance(databases[0], message_retention=None).purge()
    assert purged.jwt_ids == 1
    async with databases[1].engine.connect() as conn:
        left = (await conn.execute(select(jwt_replays.c.jti))).scalars().all()
    assert left == ["live"]
    assert await cache.first_use("live", in_a_minute()) is False


async def test_two_runtimes_share_the_database_replay_cache(settings: Settings) -> None:
    one, two = Runtime(settings, Role.API), Runtime(settings, Role.API)
    await one.start()
    await two.start()
    try:
        assert isinstance(one.replays, DatabaseReplayCache) and isinstance(two.replays, DatabaseReplayCache)
        assert await one.replays.first_use("jti", in_a_minute()) is True
        assert await two.replays.first_use("jti", in_a_minute()) is False
    finally:
        for each in (one, two):
            await each.stop()


# ---------------------------------------------------------------- end to end, with Redis


@pytest.fixture
async def redis_runtimes(settings: Settings) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two API runtimes (two processes in spirit) on one database and one Redis."""
    with_redis = settings.model_copy(update={"redis_url": REDIS_URL})
    runtimes = (Runtime(with_redis, role=Role.API), Runtime(with_redis, role=Role.API))
    for runtime in runtimes:
        await runtime.start()
    yield runtimes
    for runtime in runtimes:
        await runtime.stop()


async def test_replayed_jwt_is_refused_through_the_api_with_redis(
    redis_runtimes: tuple[Runtime, Runtime],
) -> None:
    one, two = redis_runtimes
    assert isinstance(one.replays, FallbackReplayCache)
    account = await create_account(one.database, one.box, name="replay")
    app = await create_application(one, account.api_key)
    jti = str(uuid.uuid4())
    token = app.sdk_token(jti=jti)
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(one)), base_url="http://one") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(two)), base_url="http://two") as b,
        ):
            assert (await send(a, f"Bearer {token}")).status_code == 202
            assert_unauthorized(await send(a, f"Bearer {token}"))  # same process
            assert_unauthorized(await send(b, f"Bearer {token}"))  # another process
            fresh = app.sdk_token()
            assert (await send(b, f"Bearer {fresh}")).status_code == 202
            assert_unauthorized(await send(a, f"Bearer {fresh}"))
        # Two messages, one job each; the jtis live in Redis, not in the database.
        assert await stored(one) == Stored(messages=2, jobs=2, replays=0)
        client = Redis.from_url(REDIS_URL)
        try:
            assert await client.exists(f"{RUNTIME_PREFIX}{app.id}:{jti}") == 1
        finally:
            await client.aclose()
    finally:
        await delete_redis_keys(f"{RUNTIME_PREFIX}{app.id}:*")
