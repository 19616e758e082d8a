"""Accepts first: while clients wait for their messages to be committed, background writes (the
worker's, the console's) hold back.

A process serving both the API and the worker has one core for both. A background write holds
back while any accept is queued or committing, but never longer than `max_wait` at a time, and
background writers pass one at a time: under a flood of accepts the worker still gets a
transaction in every `max_wait`, and nothing else waits much longer than that. On SQLite this is
also the one write lock of the process (SQLite has one writer; connections of one process that
race for its lock fall into its busy handler, which sleeps up to 100 ms at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class WritePriority:
    def __init__(self, *, one_writer: bool, max_wait: float) -> None:
        self._max_wait = max_wait
        self._writer = asyncio.Lock() if one_writer else None
        self._demand = 0  # accepts queued or committing
        self._calm = asyncio.Event()
        self._calm.set()
        self._turn = asyncio.Lock()  # background writers pass the wait one at a time
        self._demand_held = _Demand(self)  # one for every holder: it keeps no state of its own

    def demand(self) -> _Demand:
        """Held by an accept from its arrival until its write is committed (held twice is fine)."""
        return self._demand_held

    def _demand_starts(self) -> None:
        self._demand += 1
        self._calm.clear()

    def _demand_ends(self) -> None:
        self._demand -= 1
        if not self._demand:
            self._calm.set()

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        with self.demand():
            async with self._held():
                yield

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        async with self._turn:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calm.wait(), self._max_wait)
        async with self._held():
            yield

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        if self._writer is None:
            yield
            return
        async with self._writer:
            yield


class _Demand:
    """WritePriority.demand(): a class rather than a generator-based context manager, which costs
    an accept twice as much (a generator, its wrapper and two resumptions) and is entered twice
    per accept; the count lives in WritePriority, so one instance serves every holder."""

    __slots__ = ("_priority",)

    def __init__(self, priority: WritePriority) -> None:
        self._priority = priority

    def __enter__(self) -> None:
        self._priority._demand_starts()

    def __exit__(self, *_: object) -> None:
        self._priority._demand_ends()
