"""Which rate a send is held to: the account's or application's own, else the operator's
default, 0 meaning none; a second's worth may come at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tidings.domain.account import Account, AccountStatus
from tidings.domain.application import Application
from tidings.domain.errors import RateLimitHit
from tidings.domain.principal import Principal
from tidings.limits.limiter import RateLimiter
from tidings.services.send_limits import SendLimits

CREATED = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def caller(
    account_rate: float | None = None, app_rate: float | None = None, *, with_app: bool = False
) -> Principal:
    account = Account("acct", "t", AccountStatus.ACTIVE, CREATED, messages_per_second=account_rate)
    application = (
        Application("app", "acct", "a", "", {}, CREATED, CREATED, messages_per_second=app_rate)
        if with_app
        else None
    )
    return Principal(account, application)


async def allowed_now(limits: SendLimits, who: Principal, attempts: int) -> int:
    count = 0
    for _ in range(attempts):
        try:
            await limits.check(who)
            count += 1
        except RateLimitHit:
            pass
    return count


@pytest.mark.parametrize(
    ("own", "default", "at_once"),
    [(None, None, 50), (None, 3.0, 3), (5.0, 3.0, 5), (0.0, 3.0, 50), (2.5, None, 2), (0.5, None, 1)],
)
async def test_the_rate_an_account_is_held_to(own: float | None, default: float | None, at_once: int) -> None:
    limits = SendLimits(RateLimiter(None, clock=Clock()), account_default=default, application_default=None)
    assert await allowed_now(limits, caller(own), 50) == at_once


async def test_an_application_send_takes_from_both_buckets_or_neither() -> None:
    clock = Clock()
    limits = SendLimits(RateLimiter(None, clock=clock), account_default=3.0, application_default=1.0)
    assert await allowed_now(limits, caller(with_app=True), 5) == 1
    assert await allowed_now(limits, caller(), 5) == 2  # the application's refusals took nothing
    with pytest.raises(RateLimitHit) as refused:
        await limits.check(caller())
    assert refused.value.retry_after == 1
    clock.now += 1
    assert await allowed_now(limits, caller(with_app=True), 5) == 1
