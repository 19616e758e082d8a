"""Accounts by API key, kept briefly in memory: the JWT path needs the application's account on
every request."""

from __future__ import annotations

import time

from tidings.domain.account import Account
from tidings.store import accounts as account_store
from tidings.store.database import Database


class AccountDirectory:
    def __init__(self, database: Database, *, cache_seconds: float) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Account]] = {}

    async def get(self, api_key: str) -> Account | None:
        cached = self._cache.get(api_key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._database.read() as conn:
            account = await account_store.get_account(conn, api_key)
        if account is not None and self._cache_seconds > 0:
            self._cache[api_key] = (time.monotonic() + self._cache_seconds, account)
        return account

    def forget(self, api_key: str) -> None:
        self._cache.pop(api_key, None)
