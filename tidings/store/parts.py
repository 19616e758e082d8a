"""The parts a message travelled as, each with its provider's reference and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidings.domain.message import Status


@dataclass(frozen=True)
class FoundPart:
    message_uuid: str
    index: int
    status: Status


def part_rows(
    *,
    message_uuid: str,
    account_id: str,
    connector: str,
    provider_refs: Sequence[str],
    status: Status,
    now: datetime,
) -> list[dict[str, Any]]:
    """The `message_parts` rows of a message that travelled as `provider_refs`, in order."""
    return [
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
    ]
