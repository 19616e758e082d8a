"""The parts a message travelled as, each with its provider's reference and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
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
