"""The parts a message travelled as, each with its provider's reference and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.message import Status
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
