"""Keeping each connector within the messages per second its provider takes, across every worker.

A carrier bind or a platform's sender account takes so many messages a second and throttles or
refuses the rest. A delivery asks for a turn before it submits: a turn within `MAX_WAIT` is
reserved and waited for in the job (cheap: at most a second's worth of jobs wait at once); a
later one sends the job back to the queue to run when the connector has room, without counting
an attempt. The turns come from the process's rate limiter, so with Redis every worker process
shares one budget per connector.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping
from datetime import timedelta

from tidings.limits.gcra import Rate
from tidings.limits.limiter import RateLimiter
from tidings.queue.kinds import Postponed

MAX_WAIT = 1.0  # seconds a delivery waits in its slot for a turn


def connector_rate(messages_per_second: float) -> Rate:
    return Rate(per_second=messages_per_second, burst=max(1, math.floor(messages_per_second)))


class ConnectorThroughput:
    def __init__(
        self, limiter: RateLimiter, rates: Mapping[str, Rate], *, jitter: random.Random | None = None
    ) -> None:
        self._limiter = limiter
        self._rates = dict(rates)
        self._jitter = jitter or random.Random()  # noqa: S311 - spreading retries, not a secret

    async def take_turn(self, connector: str) -> None:
        """Returns when this delivery may submit; raises Postponed when its turn is far off."""
        rate = self._rates.get(connector)
        if rate is None:
            return
        decision = await self._limiter.acquire([(f"connector:{connector}", rate)], max_wait=MAX_WAIT)
        if decision.allowed:
            if decision.wait > 0:
                await asyncio.sleep(decision.wait)
            return
        # Spread over the next window: the postponed come back a few at a time, not all at once.
        delay = decision.wait + self._jitter.uniform(0, MAX_WAIT)
        raise Postponed(
            f"connector {connector} is at its {rate.per_second:g} messages/s", timedelta(seconds=delay)
        )
