"""Account operations: balance, top-ups, credit limit, enabling, and the default SMS callbacks.

Changes made here (by the operator's CLI, in another process) reach running API processes when
their authentication caches expire (`auth_cache_seconds`): the cached account carries its status,
credit limit and send rate limit (as a cached application carries its own). The balance itself is always read and changed in the database.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tidings.domain.account import Account, AccountStatus
from tidings.domain.account_settings import Balance, CallbackSettings
from tidings.domain.errors import AutoReloadNotEnabled, InvalidAccountRequest
from tidings.store import account_settings as store
from tidings.store import accounts as account_store
from tidings.store import applications as application_store
from tidings.store.account_settings import CallbackColumn
from tidings.store.database import Database

log = logging.getLogger("tidings.accounts")

# Vonage's defaults, the figures clients read from the settings response to pace themselves. The
# send rate an account has (services/send_limits.py) replaces the first; Tidings limits neither
# inbound messages nor API calls, so the other two stay Vonage's.
MAX_OUTBOUND_REQUESTS = 30
MAX_INBOUND_REQUESTS = 30
MAX_CALLS_PER_SECOND = 30


class DefaultSmsApi(StrEnum):
    MESSAGES = "messages"
    SMS = "sms"


@dataclass(frozen=True)
class CallbackChanges:
    """What a settings call changes: None leaves a URL as it is, "" clears it."""

    mo_callback_url: str | None = None
    dr_callback_url: str | None = None


@dataclass(frozen=True)
class AccountOverview:
    """What the operator sees of one account: its settings, balance and default SMS API."""

    account: Account
    balance: Balance
    default_sms_api: DefaultSmsApi


class UnknownAccount(LookupError):
    def __init__(self, api_key: str) -> None:
        super().__init__(f"no account {api_key}")
        self.api_key = api_key


class UnknownApplication(LookupError):
    def __init__(self, api_key: str, application_id: str) -> None:
        super().__init__(f"no application {application_id} in account {api_key}")


async def get_balance(database: Database, api_key: str) -> Balance:
    async with database.engine.connect() as conn:
        balance = await store.get_balance(conn, api_key)
    if balance is None:
        raise UnknownAccount(api_key)
    return balance


async def get_overview(database: Database, api_key: str) -> AccountOverview:
    async with database.read() as conn:
        account = await account_store.get_account(conn, api_key)
        balance = await store.get_balance(conn, api_key)
        default_sms_api = await store.get_inbound_sms_api(conn, api_key)
    if account is None or balance is None or default_sms_api is None:
        raise UnknownAccount(api_key)
    return AccountOverview(account, balance, DefaultSmsApi(default_sms_api))


async def request_top_up(database: Database, api_key: str, trx: str | None) -> None:
    """The API's top-up: Vonage repeats the payment made when auto-reload was enabled. Tidings
    takes no payments, so with auto-reload on the request is acknowledged and logged for the
    operator, who credits the account with `tidings accounts top-up`."""
    balance = await get_balance(database, api_key)
    if not balance.auto_reload:
        raise AutoReloadNotEnabled()
    if not trx:
        raise InvalidAccountRequest("trx", "is required.")
    log.info(
        "top-up requested by account %s (trx %r): credit it with `tidings accounts top-up`",
        api_key,
        trx[:100],
    )


async def top_up(database: Database, api_key: str, amount: Decimal) -> Balance:
    """The operator's credit: adds `amount` to the balance."""
    if not amount.is_finite() or amount <= 0:
        raise ValueError("the amount must be a positive number")
    async with database.begin() as conn:
        if not await store.add_to_balance(conn, api_key, amount):
            raise UnknownAccount(api_key)
        balance = await store.get_balance(conn, api_key)
    assert balance is not None
    return balance


async def set_credit_limit(database: Database, api_key: str, limit: Decimal | None) -> None:
    """`limit` is how far below zero the balance may go; None lets it fall without limit."""
    if limit is not None and (not limit.is_finite() or limit < 0):
        raise ValueError("the credit limit must be zero or a positive number")
    async with database.begin() as conn:
        if not await store.set_credit_limit(conn, api_key, limit):
            raise UnknownAccount(api_key)


async def set_rate_limit(
    database: Database, api_key: str, messages_per_second: float | None, *, application_id: str | None = None
) -> None:
    """The account's send limit, or one of its applications'. None follows the operator's
    default again; 0 lifts the limit (services/send_limits.py)."""
    if messages_per_second is not None and (
        not math.isfinite(messages_per_second) or messages_per_second < 0
    ):
        raise ValueError("messages per second must be zero or a positive number")
    async with database.begin() as conn:
        if application_id is None:
            if not await store.set_messages_per_second(conn, api_key, messages_per_second):
                raise UnknownAccount(api_key)
            return
        if not await application_store.set_messages_per_second(
            conn, application_id, api_key, messages_per_second
        ):
            if await store.get_balance(conn, api_key) is None:
                raise UnknownAccount(api_key)
            raise UnknownApplication(api_key, application_id)


async def set_enabled(database: Database, api_key: str, enabled: bool) -> None:
    status = AccountStatus.ACTIVE if enabled else AccountStatus.DISABLED
    async with database.begin() as conn:
        if not await store.set_status(conn, api_key, status):
            raise UnknownAccount(api_key)


async def set_status_url(database: Database, api_key: str, url: str | None) -> None:
    """The account's default status webhook URL, used when a request names none; None clears it."""
    async with database.begin() as conn:
        if not await account_store.set_status_url(conn, api_key, url):
            raise UnknownAccount(api_key)


async def set_default_sms_api(database: Database, api_key: str, api: DefaultSmsApi) -> None:
    """The dashboard's "Default SMS Setting" (migration guide, shared/docs/004): with `sms`, inbound
    SMS and delivery receipts keep the SMS API's shapes and the callbacks set through
    /account/settings; with `messages` (the default) they follow the Messages API."""
    async with database.begin() as conn:
        if not await store.set_inbound_sms_api(conn, api_key, api.value):
            raise UnknownAccount(api_key)


async def update_callbacks(database: Database, api_key: str, changes: CallbackChanges) -> CallbackSettings:
    """Applies the changes (URLs already validated by the caller) and returns the settings now."""
    values: dict[CallbackColumn, str | None] = {}
    if changes.mo_callback_url is not None:
        values["mo_callback_url"] = changes.mo_callback_url or None
    if changes.dr_callback_url is not None:
        values["dr_callback_url"] = changes.dr_callback_url or None
    async with database.begin() as conn:
        await store.set_callbacks(conn, api_key, values)
        settings = await store.get_callbacks(conn, api_key)
    if settings is None:
        raise UnknownAccount(api_key)
    return settings
