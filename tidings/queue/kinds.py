"""A kind of durable job, declared in one place: its name, payload model, ordering, retry policy
and the two halves of its work.

A job's work is split where its writes begin:

- `perform(job)` does whatever is slow and outside the database (read what it needs, call a
  provider, post a webhook). It may run more than once for one job (a crash before the outcome
  commits), so what it does must be safe to repeat.
- `plan(job, result)` says what came of it: whether the job is done, to be retried, or dead, and
  the writes that record it (statements, store/writes.py). The worker puts the job's settle in
  front of them, guarding them: they are applied only by the holder of the job's lease, once,
  in a transaction shared with other jobs' writes (the group commit).

`abandon(job, reason)` gives the writes of burying a job whose attempts are spent, applied with
the burial, so that what giving up means (a message rejected) commits with it, or neither does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from tidings import tracing
from tidings.queue.jobs import NewJob, RetryPolicy
from tidings.store.statements import Execute

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")


@dataclass(frozen=True)
class Job(Generic[P]):
    id: int
    kind: str
    payload: P
    attempts: int  # this one included


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Retry:
    reason: str
    delay: timedelta | None = None  # None: the kind's backoff


@dataclass(frozen=True)
class Postpone:
    """Not now, through no fault of the job's (a rate to keep): run it later, the attempt uncounted."""

    reason: str
    delay: timedelta


@dataclass(frozen=True)
class Bury:
    reason: str


Outcome = Done | Retry | Postpone | Bury


@dataclass(frozen=True)
class Plan:
    outcome: Outcome
    writes: Sequence[Execute] = ()


class RetryLater(Exception):
    """Raised by `perform`: try this job again after `delay` (or the kind's backoff)."""

    def __init__(self, reason: str, delay: timedelta | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class Postponed(Exception):
    """Raised by `perform`: nothing was tried; run this job again after `delay`, and do not count
    this attempt against the kind's retries (waiting for a turn is not failing)."""

    def __init__(self, reason: str, delay: timedelta) -> None:
        super().__init__(reason)
        self.delay = delay


class PermanentFailure(Exception):
    """Raised by `perform`: this job can never succeed; bury it now."""


class JobKind(ABC, Generic[P, R]):
    name: ClassVar[str]
    payload_type: ClassVar[type[BaseModel]]
    retry: RetryPolicy

    @classmethod
    def ordering_key(cls, payload: P) -> str | None:
        """Jobs with the same key run one at a time, oldest first; None: no order."""
        return None

    @classmethod
    def new(cls, payload: P, *, run_at: datetime | None = None) -> NewJob:
        stored = payload.model_dump(mode="json")
        trace = tracing.current_context()
        if trace is not None:  # the job's span will continue this one's trace (payload models ignore it)
            stored[tracing.TRACE_KEY] = trace
        return NewJob(
            kind=cls.name,
            payload=stored,
            ordering_key=cls.ordering_key(payload),
            run_at=run_at,
        )

    def parse(self, payload: dict[str, Any]) -> P:
        parsed: P = self.payload_type.model_validate(payload)  # type: ignore[assignment]
        return parsed

    @abstractmethod
    async def perform(self, job: Job[P]) -> R:
        """The work outside the database."""

    @abstractmethod
    async def plan(self, job: Job[P], result: R) -> Plan:
        """The job's outcome and the writes that record it."""

    async def abandon(self, job: Job[P], reason: str) -> Sequence[Execute]:
        """The writes of what burying this job means, beyond the burial itself; none by default."""
        return ()
