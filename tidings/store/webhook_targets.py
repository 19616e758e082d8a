"""Where an account's or application's webhooks go, read in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import accounts, applications


@dataclass(frozen=True)
class WebhookSettings:
    account_status_url: str | None
    application_capabilities: dict[str, Any] | None  # None: no application, or not this account's


# Built once: every status event reads it.
_SETTINGS = (
    select(accounts.c.status_url, applications.c.capabilities)
    .select_from(
        accounts.outerjoin(
            applications,
            and_(
                applications.c.id == bindparam("application_id"),
                applications.c.account_id == accounts.c.api_key,
            ),
        )
    )
    .where(accounts.c.api_key == bindparam("account_id"))
)


async def webhook_settings(
    conn: AsyncConnection, account_id: str, application_id: str | None
) -> WebhookSettings | None:
    params = {"account_id": account_id, "application_id": application_id}
    row = (await conn.execute(_SETTINGS, params)).first()
    if row is None:
        return None
    return WebhookSettings(account_status_url=row.status_url, application_capabilities=row.capabilities)
