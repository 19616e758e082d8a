"""Waking workers in other processes the moment there is work for them (PostgreSQL LISTEN/NOTIFY).

Every transaction on PostgreSQL that queues a job sends a NOTIFY on one channel (a group commit's
batch in its opening statement, postgres_opening.py; queue/jobs.py in a transaction of its own);
PostgreSQL delivers it when, and only if, the transaction commits, and folds repeats within one
transaction into one. A transaction that queues nothing notifies nobody: a worker's claim
commits too, and waking the worker that claimed would have it claim again in a loop. Each worker
process listens on a connection of its own and wakes its worker loop on every notification, so a
message accepted by one process is claimed by another in milliseconds rather than at its next
poll. Polling stays as the fallback: when the listening
connection is lost, the worker polls (and is woken once more when listening resumes) until it is
back. SQLite has one writing process and needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger("tidings.store")
CHANNEL = "tidings_jobs"
NOTIFY_CALL = f"pg_notify('{CHANNEL}', '')"
NOTIFY_SQL = f"SELECT {NOTIFY_CALL}"
RECONNECT_SECONDS = 2.0


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain libpq DSN for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobListener:
    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(url)
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="tidings-job-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        failing = False  # while the database stays down, one line says so, not one per attempt
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn)
                failing = False
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, lambda *_args: self._wake())
                self.listening.set()
                self._wake()  # whatever was enqueued while nobody listened
                await lost.wait()
                log.warning("the job notification connection was lost; polling until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:
                    log.warning("cannot listen for job notifications (%r); polling meanwhile", error)
                failing = True
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(RECONNECT_SECONDS)


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()
