"""The parts a message travelled as, each with its provider's reference and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Status, statuses_before
from tidings.domain.parts import PartState
from tidings.store.tables import message_parts


@dataclass(frozen=True)
class FoundPart:
    message_uuid: str
    index: int
    status: Status


async def insert_parts(
    conn: AsyncConnection,
    *,
    message_uuid: str,
    account_id: str,
    connector: str,
    provider_refs: Sequence[str],
    status: Status,
    now: datetime,
) -> None:
    await conn.execute(
        insert(message_parts),
        [
            {
                "message_uuid": message_uuid,
                "part_index": index,
                "account_id": account_id,
                "connector": connector,
                "provider_ref": ref,
                "status": status.value,
                "updated_at": now,
            }
            for index, ref in enumerate(provider_refs)
        ],
    )


_BY_REF = select(
    message_parts.c.message_uuid,
    message_parts.c.part_index,
    message_parts.c.status,
    message_parts.c.updated_at,
).where(
    message_parts.c.connector == bindparam("connector"),
    message_parts.c.provider_ref == bindparam("provider_ref"),
)
_BY_REF_OF_ACCOUNT = _BY_REF.where(message_parts.c.account_id == bindparam("account_id"))


async def find_part(
    conn: AsyncConnection, *, connector: str, provider_ref: str, account_id: str | None
) -> FoundPart | None:
    """The part a provider's reference names. References are unique per connector only for a
    while (a carrier may reuse its ids), so a part still in flight wins over a finished one, and
    the most recently changed over an older one."""
    params = {"connector": connector, "provider_ref": provider_ref}
    statement = _BY_REF if account_id is None else _BY_REF_OF_ACCOUNT
    if account_id is not None:
        params["account_id"] = account_id
    rows = (await conn.execute(statement, params)).all()
    if not rows:
        return None
    row = max(rows, key=lambda r: (not Status(r.status).is_final, r.updated_at))
    return FoundPart(row.message_uuid, row.part_index, Status(row.status))


_ADVANCE = (
    update(message_parts)
    .where(
        and_(
            message_parts.c.message_uuid == bindparam("uuid"),
            message_parts.c.part_index == bindparam("index"),
            message_parts.c.status.in_(bindparam("allowed_from", expanding=True)),
        )
    )
    .values(
        status=bindparam("new_status"),
        error_code=bindparam("new_error_code"),
        error_detail=bindparam("new_error_detail"),
        network_code=bindparam("new_network_code"),
        updated_at=bindparam("now"),
    )
)


async def advance_part(
    conn: AsyncConnection,
    part: FoundPart,
    status: Status,
    *,
    error: DeliveryError | None,
    network_code: str | None,
    now: datetime,
) -> bool:
    """Moves one part forward; a report that would move it back, or repeats its state, changes nothing."""
    result = await conn.execute(
        _ADVANCE,
        {
            "uuid": part.message_uuid,
            "index": part.index,
            "allowed_from": [s.value for s in statuses_before(status)],
            "new_status": status.value,
            "new_error_code": int(error.code) if error else None,
            "new_error_detail": error.detail if error else None,
            "new_network_code": network_code,
            "now": now,
        },
    )
    return result.rowcount > 0


_OF_MESSAGE = select(
    message_parts.c.part_index,
    message_parts.c.status,
    message_parts.c.error_code,
    message_parts.c.error_detail,
).where(message_parts.c.message_uuid == bindparam("uuid"))


async def part_states(conn: AsyncConnection, message_uuid: str) -> list[PartState]:
    rows = (await conn.execute(_OF_MESSAGE, {"uuid": message_uuid})).all()
    return [
        PartState(
            index=row.part_index,
            status=Status(row.status),
            error=DeliveryError.of(DeliveryErrorCode(row.error_code), row.error_detail)
            if row.error_code is not None
            else None,
        )
        for row in rows
    ]
