"""Rented numbers. Reads for an API caller are always scoped to its account: a number another
account owns is simply not found. Only routing (`get_number`) and the pool look across accounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.number import (
    Feature,
    NumberPattern,
    NumberType,
    OwnedNumber,
    OwnedNumberFilter,
    Page,
    SearchPattern,
    VoiceCallbackType,
    ordered_features,
)
from tidings.store.tables import numbers


def number_from_row(row: RowMapping) -> OwnedNumber:
    voice_type = row["voice_callback_type"]
    return OwnedNumber(
        msisdn=row["msisdn"],
        account_id=row["account_id"],
        country=row["country"],
        type=NumberType(row["type"]),
        features=ordered_features(Feature(value) for value in row["features"] or []),
        created_at=row["created_at"],
        app_id=row["app_id"],
        mo_http_url=row["mo_http_url"],
        voice_callback_type=VoiceCallbackType(voice_type) if voice_type else None,
        voice_callback_value=row["voice_callback_value"],
        voice_status_callback=row["voice_status_callback"],
    )


async def insert_number(conn: AsyncConnection, number: OwnedNumber) -> None:
    """Raises IntegrityError when the msisdn is already rented, by anyone."""
    await conn.execute(
        insert(numbers).values(
            msisdn=number.msisdn,
            account_id=number.account_id,
            country=number.country,
            type=number.type.value,
            features=[feature.value for feature in number.features],
            app_id=number.app_id,
            mo_http_url=number.mo_http_url,
            voice_callback_type=number.voice_callback_type.value if number.voice_callback_type else None,
            voice_callback_value=number.voice_callback_value,
            voice_status_callback=number.voice_status_callback,
            created_at=number.created_at,
        )
    )


async def get_number(conn: AsyncConnection, msisdn: str) -> OwnedNumber | None:
    """Whoever owns it: for routing inbound traffic, never for answering an account."""
    row = (await conn.execute(select(numbers).where(numbers.c.msisdn == msisdn))).mappings().first()
    return number_from_row(row) if row else None


async def get_owned_number(conn: AsyncConnection, msisdn: str, account_id: str) -> OwnedNumber | None:
    row = (
        (
            await conn.execute(
                select(numbers).where(numbers.c.msisdn == msisdn, numbers.c.account_id == account_id)
            )
        )
        .mappings()
        .first()
    )
    return number_from_row(row) if row else None


def _pattern_condition(pattern: NumberPattern) -> ColumnElement[bool]:
    # Patterns are validated as digits only, so they carry no LIKE wildcards to escape.
    if pattern.strategy is SearchPattern.STARTS_WITH:
        return numbers.c.msisdn.like(f"{pattern.digits}%")
    if pattern.strategy is SearchPattern.ENDS_WITH:
        return numbers.c.msisdn.like(f"%{pattern.digits}")
    return numbers.c.msisdn.like(f"%{pattern.digits}%")


def _filter_conditions(account_id: str, where: OwnedNumberFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [numbers.c.account_id == account_id]
    if where.country:
        conditions.append(numbers.c.country == where.country)
    if where.application_id:
        conditions.append(numbers.c.app_id == where.application_id)
    if where.has_application is True:
        conditions.append(numbers.c.app_id.is_not(None))
    elif where.has_application is False:
        conditions.append(numbers.c.app_id.is_(None))
    if where.pattern:
        conditions.append(_pattern_condition(where.pattern))
    return conditions


async def list_owned_numbers(
    conn: AsyncConnection, account_id: str, where: OwnedNumberFilter, page: Page
) -> tuple[list[OwnedNumber], int]:
    conditions = _filter_conditions(account_id, where)
    total = (await conn.execute(select(func.count()).select_from(numbers).where(*conditions))).scalar_one()
    rows = (
        await conn.execute(
            select(numbers).where(*conditions).order_by(numbers.c.msisdn).offset(page.offset).limit(page.size)
        )
    ).mappings()
    return [number_from_row(row) for row in rows], int(total)


async def list_all_numbers(conn: AsyncConnection, account_id: str | None = None) -> list[OwnedNumber]:
    """The operator's view (CLI): every account's numbers, or one account's."""
    query = select(numbers).order_by(numbers.c.account_id, numbers.c.msisdn)
    if account_id is not None:
        query = query.where(numbers.c.account_id == account_id)
    return [number_from_row(row) for row in (await conn.execute(query)).mappings()]


async def rented_msisdns(conn: AsyncConnection, country: str) -> set[str]:
    """Every rented number of a country, whoever rents it: what the pool no longer offers."""
    result = await conn.execute(select(numbers.c.msisdn).where(numbers.c.country == country))
    return set(result.scalars())


async def update_number(conn: AsyncConnection, msisdn: str, account_id: str, values: dict[str, Any]) -> bool:
    result = await conn.execute(
        update(numbers).where(numbers.c.msisdn == msisdn, numbers.c.account_id == account_id).values(**values)
    )
    return result.rowcount > 0


async def delete_number(conn: AsyncConnection, msisdn: str, account_id: str) -> bool:
    result = await conn.execute(
        delete(numbers).where(numbers.c.msisdn == msisdn, numbers.c.account_id == account_id)
    )
    return result.rowcount > 0
