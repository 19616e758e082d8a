"""Rate limits held in this process: the embedded default, and the fallback while Redis is away.

Everything happens in plain Python without awaiting anything, so a check costs a dictionary
lookup and a little arithmetic on the accept path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from tidings.limits.gcra import Decision, Rate, decide, delay_of

SWEEP_EVERY = 4096  # checks between sweeps of the buckets that have refilled


class LocalRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._checks = 0

    def acquire_now(self, buckets: Sequence[tuple[str, Rate]], max_wait: float = 0.0) -> Decision:
        """Takes one unit from every bucket, or from none of them."""
        now = self._clock()
        self._sweep(now)
        tats = [self._tats.get(key, now) for key, _ in buckets]
        decision = decide(
            [delay_of(tat, now, rate) for tat, (_, rate) in zip(tats, buckets, strict=True)], max_wait
        )
        if decision.allowed:
            for tat, (key, rate) in zip(tats, buckets, strict=True):
                self._tats[key] = max(tat, now) + rate.interval
        return decision

    def check_now(self, buckets: Sequence[tuple[str, Rate]]) -> Decision:
        """What acquire_now would decide, taking nothing."""
        now = self._clock()
        return decide([delay_of(self._tats.get(key, now), now, rate) for key, rate in buckets], 0.0)

    def refund_now(self, buckets: Sequence[tuple[str, Rate]]) -> None:
        """Gives back a unit taken before the caller knew it should not count."""
        now = self._clock()
        for key, rate in buckets:
            tat = self._tats.get(key)
            if tat is not None:
                self._tats[key] = max(now, tat - rate.interval)

    def _sweep(self, now: float) -> None:
        """A bucket whose TAT has passed is as good as a new one: forgetting it bounds memory by
        the keys active in the last little while, however many an attacker invents."""
        self._checks += 1
        if self._checks % SWEEP_EVERY:
            return
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
