"""Receiving a message for one of an account's addresses: store it and queue its webhook together.

The webhook is an ordinary `send_webhook` job, so inbound webhooks are signed, retried and
recorded exactly like status webhooks. A message for an address nobody holds is never dropped:
it is kept in `unroutable_inbound` and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.application import Application
from tidings.domain.channel_registry import Billing, ChannelSpec, InboundAddress, channel_spec
from tidings.domain.external_account import ExternalAccount
from tidings.domain.ids import new_time_ordered_uuid, new_uuid
from tidings.domain.inbound import (
    AccountInboundSettings,
    InboundArrival,
    InboundMessage,
    InboundOwner,
    InboundRoute,
    Received,
    Unroutable,
    route_inbound,
)
from tidings.domain.message import Channel, Status, Usage
from tidings.domain.number import OwnedNumber
from tidings.queue.jobs import NewJob, enqueue, job_rows
from tidings.services.webhook_dispatch import webhook_job
from tidings.store import applications as application_store
from tidings.store import external_accounts as external_account_store
from tidings.store import inbound as inbound_store
from tidings.store import messages as message_store
from tidings.store import numbers as number_store
from tidings.store import parts as part_store
from tidings.store.content_codec import encode
from tidings.store.database import Database
from tidings.store.tables import jobs, message_events, message_parts, messages, unroutable_inbound
from tidings.webhooks.rendering import render_inbound

log = logging.getLogger("tidings.inbound")


class RoutingReads(Protocol):
    """What routing an inbound message reads: who holds the address, the holder's settings, and
    the application the address is linked to. Read in the caller's transaction (`ReadsOn`), or
    coalesced with other messages' reads of the same moment (store/lookups.py's Lookups)."""

    async def number(self, msisdn: str) -> OwnedNumber | None: ...

    async def external_account(self, channel: Channel, external_id: str) -> ExternalAccount | None: ...

    async def inbound_settings(self, account_id: str) -> AccountInboundSettings | None: ...

    async def application(self, application_id: str, account_id: str) -> Application | None:
        """The application, if it is `account_id`'s own."""
        ...


class ReadsOn:
    """Routing's reads on one connection, in its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def number(self, msisdn: str) -> OwnedNumber | None:
        return await number_store.get_number(self._conn, msisdn)

    async def external_account(self, channel: Channel, external_id: str) -> ExternalAccount | None:
        return await external_account_store.get_external_account(self._conn, channel, external_id)

    async def inbound_settings(self, account_id: str) -> AccountInboundSettings | None:
        return await inbound_store.get_inbound_settings(self._conn, account_id)

    async def application(self, application_id: str, account_id: str) -> Application | None:
        return await application_store.get_application(self._conn, application_id, account_id=account_id)


async def find_owner(reads: RoutingReads, spec: ChannelSpec, address: str) -> InboundOwner | None:
    """Who holds an address on this channel: a rented number, or a linked external account."""
    if spec.inbound_address is InboundAddress.NUMBER:
        number = await reads.number(address)
        if number is None:
            return None
        return InboundOwner(number.account_id, number.msisdn, number.app_id, number.mo_http_url)
    external = await reads.external_account(spec.channel, address)
    if external is None:
        return None
    return InboundOwner(external.account_id, external.external_id, external.application_id)


@dataclass(frozen=True)
class InboundWrite:
    """A routed message and what storing it writes, all in one transaction: the message, its
    `delivered` event, its part (when the provider named it) and its webhook's job (when one is
    configured)."""

    received: Received
    message: InboundMessage
    rows: tuple[tuple[Table, dict[str, Any]], ...]
    webhook: NewJob | None

    def inserts(self) -> list[tuple[Table, dict[str, Any]]]:
        """Every row, the webhook's job included, as the group commit takes them."""
        webhook = [] if self.webhook is None else [self.webhook]
        return [*self.rows, *((jobs, row) for row in job_rows(webhook, self.message.received_at))]


@dataclass(frozen=True)
class NotRouted:
    """A message for nobody, and the `unroutable_inbound` row that keeps it: never dropped."""

    unroutable: Unroutable
    arrival: InboundArrival
    row: dict[str, Any]

    @property
    def rows(self) -> tuple[tuple[Table, dict[str, Any]], ...]:
        return ((unroutable_inbound, self.row),)

    def inserts(self) -> list[tuple[Table, dict[str, Any]]]:
        return list(self.rows)


class InboundReceiver:
    async def receive_alone(self, database: Database, arrival: InboundArrival) -> Received | Unroutable:
        """`receive` in a transaction of its own (the CLI's simulator; API and worker processes
        go through services/ingress.py)."""
        async with database.begin() as conn:
            return await self.receive(conn, arrival)

    async def receive(self, conn: AsyncConnection, arrival: InboundArrival) -> Received | Unroutable:
        """Routes and stores the message in the caller's transaction."""
        routed = await self.route(ReadsOn(conn), arrival)
        for table, row in routed.rows:
            await conn.execute(insert(table), row)
        if isinstance(routed, InboundWrite) and routed.webhook is not None:
            await enqueue(conn, [routed.webhook], now=routed.message.received_at)
        return stored(routed)

    async def route(self, reads: RoutingReads, arrival: InboundArrival) -> InboundWrite | NotRouted:
        """Who the message is for and what storing it writes; reads only, so that the caller may
        write it in a transaction of its own choosing."""
        spec = channel_spec(arrival.channel)
        owner = await find_owner(reads, spec, arrival.to) if spec is not None else None
        if (
            spec is None
            or owner is None
            or (arrival.account_id is not None and owner.account_id != arrival.account_id)
        ):
            return _not_routed(
                arrival, "no account holds this address" if owner is None else "not an address of the sender"
            )
        settings = await reads.inbound_settings(owner.account_id)
        if settings is None:  # the owning account vanished since its address was read
            return _not_routed(arrival, "the address's account is gone")
        application = await reads.application(owner.app_id, owner.account_id) if owner.app_id else None
        route = route_inbound(spec, owner, application, settings)
        message = InboundMessage(
            uuid=new_time_ordered_uuid(),
            account_id=owner.account_id,
            channel=arrival.channel,
            to=owner.address,
            sender=arrival.sender,
            message_type=arrival.message_type,
            content=arrival.content,
            received_at=arrival.received_at,
            # Receiving is free on the simulated network; the field is reported all the same.
            usage=Usage(currency=settings.currency, price=Decimal(0)),
            application_id=route.application_id,
            network_code=arrival.network_code,
            profile_name=arrival.profile_name,
            context=arrival.context,
            segmented=spec.billing is Billing.PER_SEGMENT,
        )
        return _write_of(message, route, connector=arrival.connector, provider_ref=arrival.provider_ref)


def stored(routed: InboundWrite | NotRouted) -> Received | Unroutable:
    """What became of a message once its rows are committed; logged when nobody will hear of it
    (kept as unroutable, or stored with no webhook configured)."""
    if isinstance(routed, NotRouted):
        arrival = routed.arrival
        log.warning(
            "unroutable inbound %s message for %s (%s); kept as %s",
            arrival.channel.value,
            arrival.to,
            routed.unroutable.reason,
            routed.unroutable.id,
        )
        return routed.unroutable
    if routed.webhook is None:
        log.warning(
            "inbound %s message %s for %s stored; no inbound webhook is configured for it",
            routed.message.channel.value,
            routed.message.uuid,
            routed.message.to,
        )
    return routed.received


def _write_of(
    message: InboundMessage, route: InboundRoute, *, connector: str, provider_ref: str | None
) -> InboundWrite:
    event_id = new_time_ordered_uuid()
    rows: list[tuple[Table, dict[str, Any]]] = [
        (messages, inbound_store.inbound_message_row(message, route, connector=connector)),
        (
            message_events,
            message_store.event_row(
                event_id=event_id,
                message_uuid=message.uuid,
                status=Status.DELIVERED,
                occurred_at=message.received_at,
                error=None,
                webhook_url=route.url,
            ),
        ),
    ]
    if provider_ref is not None:  # so that a later update (mark read) can name it to the provider
        parts = part_store.part_rows(
            message_uuid=message.uuid,
            account_id=message.account_id,
            connector=connector,
            provider_refs=[provider_ref],
            status=Status.DELIVERED,
            now=message.received_at,
        )
        rows.extend((message_parts, row) for row in parts)
    webhook = (
        None
        if route.url is None
        else webhook_job(
            event_id=event_id,
            account_id=message.account_id,
            application_id=route.application_id,
            message_uuid=message.uuid,
            url=route.url,
            body=render_inbound(message, route.shape),
        )
    )
    return InboundWrite(Received(message_uuid=message.uuid, route=route), message, tuple(rows), webhook)


def _not_routed(arrival: InboundArrival, reason: str) -> NotRouted:
    kept = Unroutable(id=new_uuid(), reason=reason)
    row = inbound_store.unroutable_row(
        unroutable_id=kept.id,
        channel=arrival.channel.value,
        to=arrival.to,
        sender=arrival.sender,
        payload={
            "channel": arrival.channel.value,
            "from": arrival.sender,
            "to": arrival.to,
            "message_type": arrival.message_type.value,
            "content": encode(arrival.content),
            "network_code": arrival.network_code,
            "connector": arrival.connector,
        },
        reason=reason,
        received_at=arrival.received_at,
    )
    return NotRouted(kept, arrival, row)
