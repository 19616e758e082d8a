"""External accounts: a page, service, business number or agent on a platform, held by an account."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.external_account import ExternalAccount
from tidings.domain.message import Channel
from tidings.store.tables import external_accounts


def _from_row(row: RowMapping) -> ExternalAccount:
    return ExternalAccount(
        channel=Channel(row["channel"]),
        external_id=row["external_id"],
        account_id=row["account_id"],
        application_id=row["application_id"],
        name=row["name"],
        created_at=row["created_at"],
    )


async def insert_external_account(conn: AsyncConnection, account: ExternalAccount) -> None:
    await conn.execute(
        insert(external_accounts).values(
            channel=account.channel.value,
            external_id=account.external_id,
            account_id=account.account_id,
            application_id=account.application_id,
            name=account.name,
            created_at=account.created_at,
        )
    )


async def get_external_account(
    conn: AsyncConnection, channel: Channel, external_id: str
) -> ExternalAccount | None:
    row = (
        (
            await conn.execute(
                select(external_accounts).where(
                    external_accounts.c.channel == channel.value,
                    external_accounts.c.external_id == external_id,
                )
            )
        )
        .mappings()
        .first()
    )
    return _from_row(row) if row is not None else None


async def list_external_accounts(
    conn: AsyncConnection, account_id: str | None = None
) -> list[ExternalAccount]:
    query = select(external_accounts).order_by(external_accounts.c.channel, external_accounts.c.external_id)
    if account_id is not None:
        query = query.where(external_accounts.c.account_id == account_id)
    rows = (await conn.execute(query)).mappings().all()
    return [_from_row(row) for row in rows]


async def delete_external_account(conn: AsyncConnection, channel: Channel, external_id: str) -> bool:
    result = await conn.execute(
        delete(external_accounts).where(
            external_accounts.c.channel == channel.value, external_accounts.c.external_id == external_id
        )
    )
    return result.rowcount > 0
