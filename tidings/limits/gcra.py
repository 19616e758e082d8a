"""The rate-limit rule every limit in Tidings follows: GCRA, a token bucket kept as one number.

A bucket is remembered as its *theoretical arrival time* (TAT): when it would be empty again if
nothing more were taken. Taking one unit moves the TAT on by the rate's interval; a request is
allowed while the TAT is no further ahead than the burst allows. One number per key is what
makes it cheap both in this process and in Redis.

A caller may accept a short wait (`max_wait`): then a slot up to that far ahead is reserved for
it, and it is told how long to wait for its turn. Waits longer than that are refused without
taking anything, with the time after which asking again would succeed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`per_second` units on average, up to `burst` at once."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError("a rate needs a positive number per second and a burst of at least 1")

    @classmethod
    def per_minute(cls, count: int) -> Rate:
        """`count` in a burst, refilled evenly over a minute."""
        return cls(per_second=count / 60, burst=count)

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        """How far ahead of now the TAT may be while a request is still allowed at once."""
        return self.interval * (self.burst - 1)


@dataclass(frozen=True)
class Decision:
    """Allowed: `wait` is how long until the reserved slot (0: now). Refused: `wait` is how long
    until the same request would be allowed."""

    allowed: bool
    wait: float = 0.0


def delay_of(tat: float, now: float, rate: Rate) -> float:
    """How long after now one more unit fits in the bucket (negative or 0: it fits now)."""
    return max(tat, now) - now - rate.tolerance


# Intervals like 1/5 s do not add up exactly in floating point; a nanosecond's grace keeps the
# fifth of a burst of five from being refused for a rounding error.
_ROUNDING = 1e-9


def decide(delays: list[float], max_wait: float) -> Decision:
    """One decision for buckets taken together: the most crowded one decides."""
    worst = max(delays, default=0.0)
    if worst > max_wait + _ROUNDING:
        return Decision(allowed=False, wait=worst - max_wait)
    return Decision(allowed=True, wait=max(0.0, worst))
