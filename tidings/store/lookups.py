"""Reads the worker makes for every job, coalesced: lookups made at about the same moment (the jobs
of one claim all start together) are answered by one query instead of one each.

Each lookup waits until the event loop's current turn ends, then one query fetches every key
asked for meanwhile. A hundred deliveries performing at once read their hundred messages in one
round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.message import Message, Status
from tidings.store.database import Database
from tidings.store.messages import message_from_row
from tidings.store.parts import FoundPart
from tidings.store.tables import accounts, applications, message_parts, messages
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


PartKey = tuple[str, str]  # (connector, provider reference)
SettingsKey = tuple[str, str | None]  # (account, application)


class Lookups:
    """The coalesced reads: messages by uuid, parts by provider reference, webhook settings."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.messages: BatchLoader[str, Message] = BatchLoader(self._messages)
        self.parts: BatchLoader[PartKey, list[tuple[FoundPart, str]]] = BatchLoader(self._parts)
        self.webhook_settings: BatchLoader[SettingsKey, WebhookSettings] = BatchLoader(self._settings)

    async def part(self, connector: str, provider_ref: str, account_id: str | None) -> FoundPart | None:
        """The part a provider's reference names, within `account_id` when one is given.
        References are unique per connector only for a while (a carrier may reuse its ids), so a
        part still in flight wins over a finished one."""
        candidates = [
            part
            for part, owner in await self.parts.load((connector, provider_ref)) or []
            if account_id is None or owner == account_id
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda part: not part.status.is_final)

    async def _read(self, query: Callable[[AsyncConnection], Awaitable[V]]) -> V:
        async with self._database.read() as conn:
            return await query(conn)

    async def _messages(self, uuids: Sequence[str]) -> Mapping[str, Message]:
        async def query(conn: AsyncConnection) -> dict[str, Message]:
            rows = (await conn.execute(select(messages).where(messages.c.uuid.in_(uuids)))).mappings()
            return {row["uuid"]: message_from_row(row) for row in rows if row["direction"] == "outbound"}

        return await self._read(query)

    async def _parts(self, keys: Sequence[PartKey]) -> Mapping[PartKey, list[tuple[FoundPart, str]]]:
        async def query(conn: AsyncConnection) -> dict[PartKey, list[tuple[FoundPart, str]]]:
            found: dict[PartKey, list[tuple[FoundPart, str]]] = {}
            for connector in {connector for connector, _ in keys}:
                refs = [ref for owner, ref in keys if owner == connector]
                rows = await conn.execute(
                    select(
                        message_parts.c.provider_ref,
                        message_parts.c.message_uuid,
                        message_parts.c.part_index,
                        message_parts.c.status,
                        message_parts.c.account_id,
                    ).where(message_parts.c.connector == connector, message_parts.c.provider_ref.in_(refs))
                )
                for row in rows:
                    part = FoundPart(row.message_uuid, row.part_index, Status(row.status))
                    found.setdefault((connector, row.provider_ref), []).append((part, row.account_id))
            return found

        return await self._read(query)

    async def _settings(self, keys: Sequence[SettingsKey]) -> Mapping[SettingsKey, WebhookSettings]:
        async def query(conn: AsyncConnection) -> dict[SettingsKey, WebhookSettings]:
            account_ids = {account for account, _ in keys}
            application_ids = {application for _, application in keys if application}
            urls = dict(
                (
                    await conn.execute(
                        select(accounts.c.api_key, accounts.c.status_url).where(
                            accounts.c.api_key.in_(account_ids)
                        )
                    )
                ).all()
            )
            apps = (
                {
                    row.id: row
                    for row in await conn.execute(
                        select(
                            applications.c.id, applications.c.account_id, applications.c.capabilities
                        ).where(applications.c.id.in_(application_ids))
                    )
                }
                if application_ids
                else {}
            )
            found: dict[SettingsKey, WebhookSettings] = {}
            for account, application in keys:
                if account not in urls:
                    continue
                app = apps.get(application) if application else None
                capabilities = app.capabilities if app is not None and app.account_id == account else None
                found[(account, application)] = WebhookSettings(urls[account], capabilities)
            return found

        return await self._read(query)
