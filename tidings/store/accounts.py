"""Accounts and their secrets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.account import Account, AccountCredentials, AccountStatus
from tidings.domain.ids import new_uuid
from tidings.store.database import Database
from tidings.store.tables import account_secrets, accounts


def _account(row: RowMapping) -> Account:
    return Account(
        api_key=row["api_key"],
        name=row["name"],
        status=AccountStatus(row["status"]),
        created_at=row["created_at"],
        status_url=row["status_url"],
        currency=row["currency"],
        credit_limit=Decimal(row["credit_limit"]) if row["credit_limit"] is not None else None,
        messages_per_second=row["messages_per_second"],
    )


async def insert_account(
    conn: AsyncConnection,
    *,
    api_key: str,
    name: str,
    secret_hash: str,
    signature_secret_enc: str,
    now: datetime,
    status_url: str | None = None,
) -> None:
    await conn.execute(
        insert(accounts).values(
            api_key=api_key,
            name=name,
            status=AccountStatus.ACTIVE.value,
            signature_secret_enc=signature_secret_enc,
            status_url=status_url,
            created_at=now,
        )
    )
    await conn.execute(
        insert(account_secrets).values(
            id=new_uuid(), account_id=api_key, secret_hash=secret_hash, created_at=now
        )
    )


async def get_account(conn: AsyncConnection, api_key: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.api_key == api_key))).mappings().first()
    return _account(row) if row else None


async def list_accounts(conn: AsyncConnection) -> list[Account]:
    rows = (await conn.execute(select(accounts).order_by(accounts.c.created_at))).mappings().all()
    return [_account(row) for row in rows]


async def any_account(conn: AsyncConnection) -> bool:
    return (await conn.execute(select(accounts.c.api_key).limit(1))).first() is not None


async def set_status_url(conn: AsyncConnection, api_key: str, status_url: str | None) -> bool:
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(status_url=status_url)
    )
    return result.rowcount > 0


class AccountCredentialStore:
    """Loads what Basic auth checks; given to the authenticator so auth does not know the schema."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def load_credentials(self, api_key: str) -> AccountCredentials | None:
        async with self._database.read() as conn:
            account = await get_account(conn, api_key)
            if account is None:
                return None
            hashes = (
                await conn.execute(
                    select(account_secrets.c.secret_hash).where(account_secrets.c.account_id == api_key)
                )
            ).scalars()
            return AccountCredentials(account=account, secret_hashes=tuple(hashes))
