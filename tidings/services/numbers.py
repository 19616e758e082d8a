"""Renting numbers: search the simulator's pool, buy, cancel, link to an application, list.

Every failure is the Numbers API's one answer, `method failed` (HTTP 420). A number another
account rents fails exactly like a number that does not exist, so nothing leaks across accounts.
"""

from __future__ import annotations

from datetime import datetime

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.simulator.number_pool import find_in_pool, pool
from tidings.domain.errors import NumberActionFailed
from tidings.domain.number import (
    AvailableNumber,
    AvailableNumberQuery,
    Feature,
    NumberType,
    NumberUpdate,
    OwnedNumber,
    OwnedNumberFilter,
    Page,
    VoiceCallbackType,
    typical_features,
)
from tidings.store import accounts as account_store
from tidings.store import applications as application_store
from tidings.store import numbers as number_store
from tidings.store.database import Database

METHOD_FAILED = "method failed"


class NumbersService:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def list_owned(
        self, account_id: str, where: OwnedNumberFilter, page: Page
    ) -> tuple[list[OwnedNumber], int]:
        async with self._database.engine.connect() as conn:
            return await number_store.list_owned_numbers(conn, account_id, where, page)

    async def list_all(self, account_id: str | None = None) -> list[OwnedNumber]:
        """The operator's view (CLI): every account's numbers, or one account's, by account."""
        async with self._database.read() as conn:
            return await number_store.list_all_numbers(conn, account_id)

    async def search(self, query: AvailableNumberQuery) -> tuple[list[AvailableNumber], int]:
        async with self._database.engine.connect() as conn:
            rented = await number_store.rented_msisdns(conn, query.country)
        types = [query.type] if query.type else None
        matching = [
            number
            for number in pool(query.country, types)
            if number.msisdn not in rented
            and number.has_features(query.features)
            and (query.pattern is None or query.pattern.matches(number.msisdn))
        ]
        page = query.page
        return matching[page.offset : page.offset + page.size], len(matching)

    async def buy(self, account_id: str, country: str, msisdn: str, *, now: datetime) -> OwnedNumber:
        offered = find_in_pool(country, msisdn)
        if offered is None:
            raise NumberActionFailed(METHOD_FAILED)
        number = OwnedNumber(
            msisdn=offered.msisdn,
            account_id=account_id,
            country=offered.country,
            type=offered.type,
            features=offered.features,
            created_at=now,
        )
        return await self._rent(number)

    async def cancel(self, account_id: str, country: str, msisdn: str) -> None:
        async with self._database.begin() as conn:
            owned = await number_store.get_owned_number(conn, msisdn, account_id)
            if owned is None or owned.country != country:
                raise NumberActionFailed(METHOD_FAILED)
            await number_store.delete_number(conn, msisdn, account_id)

    async def update(self, account_id: str, change: NumberUpdate) -> None:
        async with self._database.begin() as conn:
            owned = await number_store.get_owned_number(conn, change.msisdn, account_id)
            if owned is None or owned.country != change.country:
                raise NumberActionFailed(METHOD_FAILED)
            app_id = change.changes.get("app_id")
            if app_id:
                await _require_application(conn, app_id, account_id)
            voice_app = change.changes.get("voice_callback_value")
            if change.changes.get("voice_callback_type") == VoiceCallbackType.APP.value and voice_app:
                # Linking a number's calls to an application is using it: it must be the caller's.
                await _require_application(conn, voice_app, account_id, field="voiceCallbackValue")
            if change.changes:
                await number_store.update_number(conn, change.msisdn, account_id, dict(change.changes))

    async def add(
        self,
        account_id: str,
        country: str,
        msisdn: str,
        *,
        now: datetime,
        number_type: NumberType | None = None,
        features: tuple[Feature, ...] | None = None,
        app_id: str | None = None,
    ) -> OwnedNumber:
        """The operator's provisioning (CLI): any number of the country, not only the pool's, e.g.
        one a real carrier routes to this Tidings."""
        country = country.upper()
        msisdn = msisdn.lstrip("+")
        check_msisdn_for_country(country, msisdn)
        kind = number_type or infer_number_type(msisdn)
        async with self._database.engine.connect() as conn:
            if await account_store.get_account(conn, account_id) is None:
                raise NumberActionFailed(f"no account {account_id}")
            if app_id:
                await _require_application(conn, app_id, account_id)
        number = OwnedNumber(
            msisdn=msisdn,
            account_id=account_id,
            country=country,
            type=kind,
            features=features or typical_features(country, kind),
            created_at=now,
            app_id=app_id,
        )
        return await self._rent(number)

    async def _rent(self, number: OwnedNumber) -> OwnedNumber:
        try:
            async with self._database.begin() as conn:
                await number_store.insert_number(conn, number)
        except IntegrityError:
            # Already rented (by this account or another): not available, whoever has it.
            raise NumberActionFailed(METHOD_FAILED) from None
        return number


async def _require_application(
    conn: AsyncConnection, app_id: str, account_id: str, *, field: str = "app_id"
) -> None:
    if await application_store.get_application(conn, app_id, account_id=account_id) is None:
        raise NumberActionFailed(f"{METHOD_FAILED}: {field} is not an application of this account")


def check_msisdn_for_country(country: str, msisdn: str) -> None:
    calling_code = phonenumbers.country_code_for_region(country)
    if not calling_code:
        raise NumberActionFailed(f"unknown country {country}")
    if not msisdn.isdigit() or not 7 <= len(msisdn) <= 15:
        raise NumberActionFailed("msisdn must be 7 to 15 digits in E.164 format")
    if not msisdn.startswith(str(calling_code)):
        raise NumberActionFailed(f"msisdn {msisdn} is not a number of {country} (+{calling_code})")


_TYPES = {
    PhoneNumberType.MOBILE: NumberType.MOBILE_LVN,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.MOBILE_LVN,
    PhoneNumberType.FIXED_LINE: NumberType.LANDLINE,
    PhoneNumberType.TOLL_FREE: NumberType.LANDLINE_TOLL_FREE,
}


def infer_number_type(msisdn: str) -> NumberType:
    """libphonenumber's view of the number; reserved test ranges (e.g. 447700900xxx, which it
    does not call valid) are taken as mobile, the kind that receives SMS."""
    try:
        parsed = phonenumbers.parse(f"+{msisdn}")
    except phonenumbers.NumberParseException:
        return NumberType.MOBILE_LVN
    return _TYPES.get(phonenumbers.number_type(parsed), NumberType.MOBILE_LVN)
