"""Reads the worker makes for every job, coalesced: lookups made at about the same moment (the jobs
of one claim all start together) are answered by one query instead of one each.

Each lookup waits until the event loop's current turn ends, then one query fetches every key
asked for meanwhile. A hundred deliveries performing at once read their hundred messages, with
where their webhooks go, in one round trip.

That query is all the database work a lookup needs. A pooled connection would add more per
query: the read's own BEGIN and ROLLBACK, which a single SELECT does not need, and on PostgreSQL
the pool's liveness check (BEGIN, a ping, ROLLBACK), each a round trip; on SQLite each of them is a
hop to the driver's thread and back (a one-key lookup cost 570 µs of the event loop's CPU on a
pooled connection, 350 µs on a kept one). So the lookups keep one connection of their own, in
autocommit: each SELECT is a transaction of its own, which holds no snapshot between
lookups (SQLite's checkpoints are not held back, and every lookup sees the latest commit). On
PostgreSQL the keys go as one array (`= ANY`), which keeps each query one prepared statement
whatever the number of keys (an IN list would be a new statement, and a new prepare, for every
count).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, String, and_, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.application import Application
from tidings.domain.external_account import ExternalAccount
from tidings.domain.inbound import AccountInboundSettings
from tidings.domain.message import Channel, Direction, Message, Status
from tidings.domain.number import OwnedNumber
from tidings.store.applications import application_from_row
from tidings.store.database import Database
from tidings.store.external_accounts import get_external_account
from tidings.store.inbound import INBOUND_SETTINGS_COLUMNS, inbound_settings_from_row
from tidings.store.messages import message_from_row
from tidings.store.numbers import number_from_row
from tidings.store.outage import database_unavailable
from tidings.store.parts import FoundPart
from tidings.store.tables import accounts, applications, message_parts, messages, numbers
from tidings.store.webhook_targets import WebhookSettings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
MAX_KEYS = 500  # per query: SQLite allows a few thousand parameters, and no query should be huge


class BatchLoader(Generic[K, V]):
    def __init__(self, fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]) -> None:
        self._fetch = fetch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return await future

    def _dispatch(self) -> None:
        waiting, self._waiting, self._scheduled = self._waiting, {}, False
        keys = list(waiting)
        for start in range(0, len(keys), MAX_KEYS):
            chunk = {key: waiting[key] for key in keys[start : start + MAX_KEYS]}
            task = asyncio.get_running_loop().create_task(self._answer(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(waiting))
        except Exception as error:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))


@dataclass(frozen=True)
class Tracked:
    """An outbound message, and the settings that say where its status webhooks go."""

    message: Message
    settings: WebhookSettings


@dataclass(frozen=True)
class PartOf:
    """A part found by its provider reference, the account it belongs to, and its message."""

    part: FoundPart
    account_id: str
    tracked: Tracked


PartKey = tuple[str, str]  # (connector, provider reference)

# A message row with its account's status URL and its application's capabilities (an application
# counts only if it is the account's own).
_TRACKED = select(
    messages, accounts.c.status_url, applications.c.capabilities.label("app_capabilities")
).select_from(
    messages.join(accounts, accounts.c.api_key == messages.c.account_id).outerjoin(
        applications,
        and_(
            applications.c.id == messages.c.application_id, applications.c.account_id == messages.c.account_id
        ),
    )
)


def _tracked(row: RowMapping) -> Tracked:
    return Tracked(message_from_row(row), WebhookSettings(row["status_url"], row["app_capabilities"]))


class _KeptConnection:
    """One connection kept for the lookups, in autocommit, used one query at a time. A connection
    the server closed while it sat idle (a restart) is found out by the query that uses it; that
    query is run once more on a new connection.

    On PostgreSQL it plans each query for its keys (`force_custom_plan`). asyncpg prepares a
    statement once per connection, and after a few runs PostgreSQL may settle on a generic plan,
    kept for as long as the connection lives; made while the tables were empty (a fresh database,
    no ANALYZE since), one such plan scanned every message and every part for each batch of keys,
    and lookups went from under a millisecond to 20 ms as the tables grew. A generic plan cannot
    know how many keys an array holds anyway. The other statements need no such care: they find
    rows by primary key, or by partial indexes their literal states make usable, and planning each
    of them would cost a third more of PostgreSQL's CPU (bench.sustained at 300 messages/s: 0.56
    cores against 0.36)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, query: Callable[[AsyncConnection], Awaitable[V]]) -> V:
        async with self._lock:
            fresh = self._conn is None
            try:
                return await query(await self._connected())
            except Exception as error:
                await self.close()
                if fresh or not database_unavailable(error):
                    raise
            return await query(await self._connected())

    async def _connected(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._database.read_engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not self._database.is_sqlite:
                await self._conn.exec_driver_sql("SET plan_cache_mode = force_custom_plan")
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()


class Lookups:
    """The coalesced reads: messages by uuid, parts by provider reference, and the accounts'
    sealed signature secrets by API key, for the worker; numbers, accounts' inbound settings and
    applications, for routing inbound messages (services/inbound.py's RoutingReads)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._kept = _KeptConnection(database)
        # Built once: a statement object made anew for each query has its cache key worked out
        # anew each time (on SQLite, 350 µs of a one-key lookup's CPU against 205 µs).
        self._messages_query = _TRACKED.where(
            self._one_of(messages.c.uuid, "uuids"), messages.c.direction == Direction.OUTBOUND.value
        )
        self._parts_query = (
            _TRACKED.add_columns(
                message_parts.c.provider_ref,
                message_parts.c.part_index,
                message_parts.c.status.label("part_status"),
            )
            .join(message_parts, message_parts.c.message_uuid == messages.c.uuid)
            .where(
                message_parts.c.connector == bindparam("connector"),
                self._one_of(message_parts.c.provider_ref, "refs"),
            )
        )
        self._secrets_query = select(accounts.c.api_key, accounts.c.signature_secret_enc).where(
            self._one_of(accounts.c.api_key, "api_keys")
        )
        self._numbers_query = select(numbers).where(self._one_of(numbers.c.msisdn, "keys"))
        self._settings_query = select(accounts.c.api_key, *INBOUND_SETTINGS_COLUMNS).where(
            self._one_of(accounts.c.api_key, "keys")
        )
        self._applications_query = select(applications).where(self._one_of(applications.c.id, "keys"))
        self._numbers: BatchLoader[str, OwnedNumber] = BatchLoader(
            self._keyed(self._numbers_query, "msisdn", number_from_row)
        )
        self._settings: BatchLoader[str, AccountInboundSettings] = BatchLoader(
            self._keyed(self._settings_query, "api_key", inbound_settings_from_row)
        )
        self._applications: BatchLoader[str, Application] = BatchLoader(
            self._keyed(self._applications_query, "id", application_from_row)
        )
        self.messages: BatchLoader[str, Tracked] = BatchLoader(self._messages)
        self.parts: BatchLoader[PartKey, list[PartOf]] = BatchLoader(self._parts)
        self.sealed_signature_secrets: BatchLoader[str, str] = BatchLoader(self._sealed_signature_secrets)

    async def part(self, connector: str, provider_ref: str, account_id: str | None) -> PartOf | None:
        """The part a provider's reference names, within `account_id` when one is given.
        References are unique per connector only for a while (a carrier may reuse its ids), so a
        part still in flight wins over a finished one."""
        candidates = [
            found
            for found in await self.parts.load((connector, provider_ref)) or []
            if account_id is None or found.account_id == account_id
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda found: not found.part.status.is_final)

    async def number(self, msisdn: str) -> OwnedNumber | None:
        return await self._numbers.load(msisdn)

    async def external_account(self, channel: Channel, external_id: str) -> ExternalAccount | None:
        """Not coalesced (a key of two columns), but on the kept connection all the same."""

        async def query(conn: AsyncConnection) -> ExternalAccount | None:
            return await get_external_account(conn, channel, external_id)

        return await self._kept.run(query)

    async def inbound_settings(self, account_id: str) -> AccountInboundSettings | None:
        return await self._settings.load(account_id)

    async def application(self, application_id: str, account_id: str) -> Application | None:
        found = await self._applications.load(application_id)
        return found if found is not None and found.account_id == account_id else None

    async def close(self) -> None:
        await self._kept.close()

    def _keyed(
        self, statement: Select[Any], key: str, of_row: Callable[[RowMapping], V]
    ) -> Callable[[Sequence[str]], Awaitable[Mapping[str, V]]]:
        """A loader's fetch: `statement`, its keys bound as `keys`, read on the kept connection;
        each row made a value by `of_row`, under its column `key`."""

        async def fetch(keys: Sequence[str]) -> Mapping[str, V]:
            async def query(conn: AsyncConnection) -> dict[str, V]:
                rows = await conn.execute(statement, {"keys": list(keys)})
                return {row[key]: of_row(row) for row in rows.mappings()}

            return await self._kept.run(query)

        return fetch

    def _one_of(self, column: Any, name: str) -> Any:
        """`column` is one of the keys bound to `name`: an array on PostgreSQL (see above), an
        expanding IN list on SQLite, which has no arrays."""
        if self._database.is_sqlite:
            return column.in_(bindparam(name, expanding=True))
        return column == any_(bindparam(name, type_=ARRAY(String)))

    async def _messages(self, uuids: Sequence[str]) -> Mapping[str, Tracked]:
        async def query(conn: AsyncConnection) -> dict[str, Tracked]:
            rows = await conn.execute(self._messages_query, {"uuids": list(uuids)})
            return {row["uuid"]: _tracked(row) for row in rows.mappings()}

        return await self._kept.run(query)

    async def _parts(self, keys: Sequence[PartKey]) -> Mapping[PartKey, list[PartOf]]:
        async def query(conn: AsyncConnection) -> dict[PartKey, list[PartOf]]:
            found: dict[PartKey, list[PartOf]] = {}
            for connector in {connector for connector, _ in keys}:
                refs = [ref for owner, ref in keys if owner == connector]
                rows = await conn.execute(self._parts_query, {"connector": connector, "refs": refs})
                for row in rows.mappings():
                    part = FoundPart(row["uuid"], row["part_index"], Status(row["part_status"]))
                    found.setdefault((connector, row["provider_ref"]), []).append(
                        PartOf(part, row["account_id"], _tracked(row))
                    )
            return found

        return await self._kept.run(query)

    async def _sealed_signature_secrets(self, api_keys: Sequence[str]) -> Mapping[str, str]:
        async def query(conn: AsyncConnection) -> dict[str, str]:
            rows = await conn.execute(self._secrets_query, {"api_keys": list(api_keys)})
            return {api_key: sealed for api_key, sealed in rows}

        return await self._kept.run(query)
