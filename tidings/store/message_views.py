"""Reading stored messages back for their owner: one with its history, a filtered page of them, or
the little an update needs. Every read is scoped to the account: another account's message is
indistinguishable from one that does not exist."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.history import MessageFilter, MessageView, StatusChange
from tidings.domain.message import Channel, Direction, MessageRecord, MessageType, Status, Usage
from tidings.store.content_codec import decode_content
from tidings.store.tables import message_events, message_parts, messages


def _error(code: int | None, detail: str | None) -> DeliveryError | None:
    return DeliveryError.of(DeliveryErrorCode(code), detail) if code is not None else None


async def get_record(conn: AsyncConnection, uuid: str, account_id: str) -> MessageRecord | None:
    row = (
        (
            await conn.execute(
                select(messages).where(messages.c.uuid == uuid, messages.c.account_id == account_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    refs = (
        await conn.execute(
            select(message_parts.c.provider_ref)
            .where(message_parts.c.message_uuid == uuid)
            .order_by(message_parts.c.part_index)
        )
    ).scalars()
    return MessageRecord(
        uuid=row["uuid"],
        account_id=row["account_id"],
        channel=Channel(row["channel"]),
        direction=Direction(row["direction"]),
        to=row["to_address"],
        sender=row["from_address"],
        status=Status(row["status"]),
        connector=row["connector"],
        provider_refs=tuple(refs),
        created_at=row["created_at"],
    )


def _view(row: RowMapping, history: Sequence[StatusChange]) -> MessageView:
    message_type = MessageType(row["message_type"])
    usage = (
        Usage(row["currency"], Decimal(row["price"]))
        if row["price"] is not None and row["currency"]
        else None
    )
    return MessageView(
        uuid=row["uuid"],
        direction=Direction(row["direction"]),
        channel=Channel(row["channel"]),
        message_type=message_type,
        to=row["to_address"],
        sender=row["from_address"],
        content=decode_content(message_type, row["content"]),
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        client_ref=row["client_ref"],
        application_id=row["application_id"],
        error=_error(row["error_code"], row["error_detail"]),
        usage=usage,
        segments=row["segments"],
        history=tuple(history),
    )


async def _histories(conn: AsyncConnection, uuids: Sequence[str]) -> dict[str, list[StatusChange]]:
    found: dict[str, list[StatusChange]] = {uuid: [] for uuid in uuids}
    if not uuids:
        return found
    rows = await conn.execute(
        select(
            message_events.c.message_uuid,
            message_events.c.status,
            message_events.c.occurred_at,
            message_events.c.error_code,
            message_events.c.error_detail,
        )
        .where(message_events.c.message_uuid.in_(uuids))
        .order_by(message_events.c.occurred_at, message_events.c.id)
    )
    for row in rows:
        found[row.message_uuid].append(
            StatusChange(Status(row.status), row.occurred_at, _error(row.error_code, row.error_detail))
        )
    return found


async def get_view(conn: AsyncConnection, uuid: str, account_id: str) -> MessageView | None:
    row = (
        (
            await conn.execute(
                select(messages).where(messages.c.uuid == uuid, messages.c.account_id == account_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return _view(row, (await _histories(conn, [uuid]))[uuid])


async def list_views(
    conn: AsyncConnection,
    account_id: str,
    where: MessageFilter,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[MessageView]:
    """Newest first, `limit` at most, starting after the (created_at, uuid) of the last one seen."""
    conditions = [messages.c.account_id == account_id]
    equal = {
        messages.c.to_address: where.to,
        messages.c.from_address: where.sender,
        messages.c.channel: where.channel.value if where.channel else None,
        messages.c.status: where.status.value if where.status else None,
        messages.c.client_ref: where.client_ref,
        messages.c.direction: where.direction.value if where.direction else None,
    }
    conditions += [column == value for column, value in equal.items() if value is not None]
    if where.created_from is not None:
        conditions.append(messages.c.created_at >= where.created_from)
    if where.created_before is not None:
        conditions.append(messages.c.created_at < where.created_before)
    if after is not None:
        created, uuid = after
        conditions.append(
            or_(
                messages.c.created_at < created,
                and_(messages.c.created_at == created, messages.c.uuid < uuid),
            )
        )
    query = (
        select(messages)
        .where(*conditions)
        .order_by(messages.c.created_at.desc(), messages.c.uuid.desc())
        .limit(limit)
    )
    rows = (await conn.execute(query)).mappings().all()
    histories = await _histories(conn, [row["uuid"] for row in rows])
    return [_view(row, histories[row["uuid"]]) for row in rows]
