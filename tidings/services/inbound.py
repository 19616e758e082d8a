"""Receiving a message for a rented number: store it and queue its webhook in one transaction.

The webhook is an ordinary `send_webhook` job, so inbound webhooks are signed, retried and
recorded exactly like status webhooks. A message for a number nobody rents is never dropped: it
is kept in `unroutable_inbound` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.ids import new_uuid
from tidings.domain.inbound import InboundMessage, InboundRoute, route_inbound
from tidings.domain.message import Channel, Status, Usage
from tidings.services.webhook_dispatch import queue_webhook
from tidings.store import applications as application_store
from tidings.store import inbound as inbound_store
from tidings.store import messages as message_store
from tidings.store import numbers as number_store
from tidings.store.database import Database
from tidings.webhooks.inbound_payloads import render_inbound

log = logging.getLogger("tidings.inbound")


@dataclass(frozen=True)
class InboundArrival:
    """What the network hands over: a message from `sender` to the number `to`."""

    channel: Channel
    sender: str
    to: str
    text: str
    network_code: str | None = None
    provider: str = "simulator"


@dataclass(frozen=True)
class Received:
    message_uuid: str
    route: InboundRoute


@dataclass(frozen=True)
class Unroutable:
    id: str
    reason: str


class InboundReceiver:
    def __init__(
        self,
        database: Database,
        *,
        webhook_max_attempts: int,
        wake_worker: Callable[[], None] | None = None,
    ) -> None:
        self._database = database
        self._webhook_max_attempts = webhook_max_attempts
        self._wake_worker = wake_worker

    async def receive(
        self, arrival: InboundArrival, *, now: datetime, account_id: str | None = None
    ) -> Received | Unroutable:
        """`account_id` limits routing to that account's numbers (a tenant driving the simulator);
        None routes to whichever account rents the number (the network itself, the operator)."""
        async with self._database.begin() as conn:
            number = await number_store.get_number(conn, arrival.to)
            if number is None or (account_id is not None and number.account_id != account_id):
                reason = "no account rents this number" if number is None else "not a number of the sender"
                return await self._keep_unroutable(conn, arrival, reason, now)
            settings = await inbound_store.get_inbound_settings(conn, number.account_id)
            if settings is None:  # the owning account vanished mid-transaction
                return await self._keep_unroutable(conn, arrival, "the number's account is gone", now)
            application = (
                await application_store.get_application(conn, number.app_id, account_id=number.account_id)
                if number.app_id
                else None
            )
            route = route_inbound(arrival.channel, number, application, settings)
            message = InboundMessage(
                uuid=new_uuid(),
                account_id=number.account_id,
                channel=arrival.channel,
                to=number.msisdn,
                sender=arrival.sender,
                text=arrival.text,
                received_at=now,
                # Receiving is free on the simulated network; the field is reported all the same.
                usage=Usage(currency=settings.currency, price=Decimal(0)),
                application_id=route.application_id,
                network_code=arrival.network_code,
            )
            await self._store(conn, message, route, provider=arrival.provider, now=now)
        if route.url and self._wake_worker:
            self._wake_worker()
        return Received(message_uuid=message.uuid, route=route)

    async def _store(
        self,
        conn: AsyncConnection,
        message: InboundMessage,
        route: InboundRoute,
        *,
        provider: str,
        now: datetime,
    ) -> None:
        event_id = new_uuid()
        await inbound_store.insert_inbound_message(conn, message, route, provider=provider)
        await message_store.insert_event(
            conn,
            event_id=event_id,
            message_uuid=message.uuid,
            status=Status.DELIVERED,
            occurred_at=now,
            error=None,
            webhook_url=route.url,
        )
        if route.url is None:
            log.warning(
                "inbound %s message %s for %s stored; no inbound webhook is configured for it",
                message.channel.value,
                message.uuid,
                message.to,
            )
            return
        await queue_webhook(
            conn,
            event_id=event_id,
            account_id=message.account_id,
            application_id=route.application_id,
            message_uuid=message.uuid,
            url=route.url,
            body=render_inbound(message, route.shape),
            now=now,
            max_attempts=self._webhook_max_attempts,
        )

    async def _keep_unroutable(
        self, conn: AsyncConnection, arrival: InboundArrival, reason: str, now: datetime
    ) -> Unroutable:
        kept = Unroutable(id=new_uuid(), reason=reason)
        await inbound_store.insert_unroutable(
            conn,
            unroutable_id=kept.id,
            channel=arrival.channel.value,
            to=arrival.to,
            sender=arrival.sender,
            payload={
                "channel": arrival.channel.value,
                "from": arrival.sender,
                "to": arrival.to,
                "text": arrival.text,
                "network_code": arrival.network_code,
                "provider": arrival.provider,
            },
            reason=reason,
            received_at=now,
        )
        log.warning(
            "unroutable inbound %s message for %s (%s); kept as %s",
            arrival.channel.value,
            arrival.to,
            reason,
            kept.id,
        )
        return kept
