"""The replay cache of a deployment with Redis, while Redis comes and goes (fakes for both stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidings.auth import replay_fallback
from tidings.auth.replay_fallback import FallbackReplayCache, ReplayUnknown

LEEWAY = 30


class FakeStore:
    """Remembers ids like either cache; `down` makes it fail as an unreachable Redis does."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.down = False
        self.calls = 0

    async def first_use(self, jti: str, expires_at: datetime, issued_at: datetime | None = None) -> bool:
        self.calls += 1
        if self.down:
            raise ConnectionError("Connection refused")
        if jti in self.seen:
            return False
        self.seen.add(jti)
        return True

    async def ping(self) -> bool:
        return not self.down

    async def close(self) -> None:
        return None


def later() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeStore, FakeStore, FallbackReplayCache]:
    monkeypatch.setattr(replay_fallback, "REDIS_RETRY_SECONDS", 0.0)  # every check tries Redis again
    redis, database = FakeStore(), FakeStore()
    cache: Any = FallbackReplayCache(redis, database, leeway_seconds=LEEWAY)  # type: ignore[arg-type]
    return redis, database, cache


async def test_redis_alone_while_it_answers(stores: tuple[FakeStore, FakeStore, FallbackReplayCache]) -> None:
    redis, database, cache = stores
    assert await cache.first_use("a", later(), ago(1)) is True
    assert await cache.first_use("a", later(), ago(1)) is False
    assert redis.seen == {"a"} and database.calls == 0


async def test_while_redis_is_down_new_tokens_go_to_the_database(
    stores: tuple[FakeStore, FakeStore, FallbackReplayCache],
) -> None:
    redis, database, cache = stores
    redis.down = True
    issued = datetime.now(UTC) + timedelta(seconds=1)  # after the outage began
    with pytest.raises(ReplayUnknown):
        await cache.first_use("old", later(), ago(10))  # Redis may have seen it: not decidable now
    assert await cache.first_use("new", later(), issued) is True
    assert await cache.first_use("new", later(), issued) is False
    assert database.seen == {"new"}


async def test_a_token_used_before_the_outage_is_not_accepted_during_it(
    stores: tuple[FakeStore, FakeStore, FallbackReplayCache],
) -> None:
    redis, _database, cache = stores
    issued = ago(5)
    assert await cache.first_use("t", later(), issued) is True
    redis.down = True
    with pytest.raises(ReplayUnknown) as refused:
        await cache.first_use("t", later(), issued)
    assert refused.value.status == 503


async def test_after_the_outage_a_token_used_during_it_stays_used(
    stores: tuple[FakeStore, FakeStore, FallbackReplayCache],
) -> None:
    redis, database, cache = stores
    redis.down = True
    with pytest.raises(ReplayUnknown):
        await cache.first_use("probe", later(), ago(10))
    during = datetime.now(UTC) + timedelta(seconds=1)
    assert await cache.first_use("d", later(), during) is True
    redis.down = False
    redis.seen.clear()  # restarted without persistence
    assert await cache.first_use("d", later(), during) is False  # the database remembers it
    # A token issued long after the outage is Redis's alone again.
    fresh = datetime.now(UTC) + timedelta(seconds=LEEWAY + 5)
    calls = database.calls
    assert await cache.first_use("f", later(), fresh) is True
    assert database.calls == calls


async def test_a_database_outage_during_a_redis_outage_is_not_swallowed(
    stores: tuple[FakeStore, FakeStore, FallbackReplayCache],
) -> None:
    redis, database, cache = stores
    redis.down = database.down = True
    with pytest.raises(ConnectionError):
        await cache.first_use("x", later(), datetime.now(UTC) + timedelta(seconds=1))
