"""Applications, always looked up within their account (a foreign id is simply not found)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.application import Application
from tidings.store.database import Database
from tidings.store.tables import applications


def application_from_row(row: RowMapping) -> Application:
    return Application(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        public_key=row["public_key"],
        capabilities=row["capabilities"] or {},
        privacy=row["privacy"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        messages_per_second=row["messages_per_second"],
    )


async def insert_application(conn: AsyncConnection, application: Application) -> None:
    await conn.execute(
        insert(applications).values(
            id=application.id,
            account_id=application.account_id,
            name=application.name,
            public_key=application.public_key,
            capabilities=application.capabilities,
            privacy=application.privacy,
            created_at=application.created_at,
            updated_at=application.updated_at,
        )
    )


async def get_application(
    conn: AsyncConnection, application_id: str, *, account_id: str | None
) -> Application | None:
    """`account_id` None is for the JWT check, which learns the account from the application."""
    query = select(applications).where(applications.c.id == application_id)
    if account_id is not None:
        query = query.where(applications.c.account_id == account_id)
    row = (await conn.execute(query)).mappings().first()
    return application_from_row(row) if row else None


async def list_applications(
    conn: AsyncConnection, account_id: str, *, offset: int, limit: int
) -> tuple[list[Application], int]:
    total = (
        await conn.execute(
            select(func.count()).select_from(applications).where(applications.c.account_id == account_id)
        )
    ).scalar_one()
    rows = (
        await conn.execute(
            select(applications)
            .where(applications.c.account_id == account_id)
            .order_by(applications.c.created_at, applications.c.id)
            .offset(offset)
            .limit(limit)
        )
    ).mappings()
    return [application_from_row(row) for row in rows], int(total)


async def update_application(
    conn: AsyncConnection, application_id: str, account_id: str, values: dict[str, Any], now: datetime
) -> bool:
    result = await conn.execute(
        update(applications)
        .where(applications.c.id == application_id, applications.c.account_id == account_id)
        .values(**values, updated_at=now)
    )
    return result.rowcount > 0


async def set_messages_per_second(
    conn: AsyncConnection, application_id: str, account_id: str, value: float | None
) -> bool:
    result = await conn.execute(
        update(applications)
        .where(applications.c.id == application_id, applications.c.account_id == account_id)
        .values(messages_per_second=value)
    )
    return result.rowcount > 0


async def delete_application(conn: AsyncConnection, application_id: str, account_id: str) -> bool:
    result = await conn.execute(
        delete(applications).where(
            applications.c.id == application_id, applications.c.account_id == account_id
        )
    )
    return result.rowcount > 0


class ApplicationKeyStore:
    """What the JWT check loads: the application by id, whichever account owns it."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def load_application(self, application_id: str) -> Application | None:
        async with self._database.read() as conn:
            return await get_application(conn, application_id, account_id=None)
