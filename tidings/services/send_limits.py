"""How fast an account, and an application within it, may send: a rate per second each.

An account's or an application's own limit (`tidings accounts set-rate-limit`) wins; without one
the operator's default applies (`TIDINGS_MESSAGES_PER_SECOND`,
`TIDINGS_APPLICATION_MESSAGES_PER_SECOND`); 0 means no limit. The limits travel with the
authenticated account and application, already in memory, so the check on the accept path is
the limiter's alone: a dictionary lookup in this process, or one Redis round trip when shared.
A second's worth of sends may come at once (the burst), as Vonage's per-second limits allow.
"""

from __future__ import annotations

import math

from tidings.domain.account import Account
from tidings.domain.errors import RateLimitHit
from tidings.domain.principal import Principal
from tidings.limits.gcra import Rate
from tidings.limits.limiter import Bucket, RateLimiter
from tidings.metrics import THROTTLED
from tidings.services.account_settings import MAX_OUTBOUND_REQUESTS

_COUNTED = THROTTLED.labels("send_rate")


def _rate(own: float | None, default: float | None) -> Rate | None:
    per_second = default if own is None else own
    if not per_second:
        return None
    return Rate(per_second=per_second, burst=max(1, math.floor(per_second)))


class SendLimits:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        account_default: float | None,
        application_default: float | None,
    ) -> None:
        self._limiter = limiter
        self._account_default = account_default
        self._application_default = application_default

    async def check(self, caller: Principal) -> None:
        """Takes one send from the caller's buckets, or raises RateLimitHit taking none."""
        buckets: list[Bucket] = []
        account_rate = _rate(caller.account.messages_per_second, self._account_default)
        if account_rate is not None:
            buckets.append((f"send-account:{caller.account.api_key}", account_rate))
        if caller.application is not None:
            application_rate = _rate(caller.application.messages_per_second, self._application_default)
            if application_rate is not None:
                buckets.append((f"send-application:{caller.application.id}", application_rate))
        if not buckets:
            return
        decision = await self._limiter.acquire(buckets)
        if not decision.allowed:
            _COUNTED.inc()
            raise RateLimitHit(retry_after=max(1, math.ceil(decision.wait)))

    def reported_per_second(self, account: Account) -> int:
        """The account's send limit as the Account API's settings report it (`max-outbound-request`,
        a whole number of messages a second): the limit this process enforces, from the account
        as authenticated. A fractional rate reports as the sends it allows at once (at least one);
        no limit as Vonage's default, the figure clients that pace themselves by it expect."""
        rate = _rate(account.messages_per_second, self._account_default)
        return MAX_OUTBOUND_REQUESTS if rate is None else rate.burst
