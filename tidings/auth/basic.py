"""HTTP Basic authentication with an account's API key and secret.

Secrets are argon2 hashes, far too slow to verify on every request, so a successful check is
cached briefly in this process, keyed by the key and a SHA-256 of the presented secret (the
secret itself is never kept). Failures are not cached, and every check of an unknown key costs a
full hash too, so timing does not tell whether a key exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from typing import Protocol

from tidings.auth.secret_hashing import hash_secret, verify_secret
from tidings.domain.account import Account, AccountCredentials
from tidings.domain.errors import Unauthorized

_DECOY_HASH = hash_secret("decoy-secret-for-unknown-keys")


class CredentialSource(Protocol):
    async def load_credentials(self, api_key: str) -> AccountCredentials | None: ...


def parse_basic(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    api_key, sep, secret = decoded.partition(":")
    if not sep or not api_key or not secret:
        return None
    return api_key, secret


class BasicAuthenticator:
    def __init__(self, source: CredentialSource, cache_seconds: float) -> None:
        self._source = source
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, bytes], tuple[float, Account]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def authenticate(self, authorization: str | None) -> Account:
        credentials = parse_basic(authorization or "")
        if credentials is None:
            raise Unauthorized()
        api_key, secret = credentials
        cache_key = (api_key, hashlib.sha256(secret.encode()).digest())
        account = self._cached(cache_key)
        if account is None:
            # One verification per key at a time: a burst of requests with new credentials
            # waits for the first instead of running the KDF once each.
            lock = self._locks.setdefault(api_key, asyncio.Lock())
            async with lock:
                account = self._cached(cache_key) or await self._verify(api_key, secret, cache_key)
        if not account.is_active:
            raise Unauthorized()
        return account

    def invalidate(self, api_key: str) -> None:
        for key in [key for key in self._cache if key[0] == api_key]:
            del self._cache[key]

    def _cached(self, cache_key: tuple[str, bytes]) -> Account | None:
        entry = self._cache.get(cache_key)
        if entry is None:
            return None
        expires_at, account = entry
        if expires_at < time.monotonic():
            self._cache.pop(cache_key, None)
            return None
        return account

    async def _verify(self, api_key: str, secret: str, cache_key: tuple[str, bytes]) -> Account:
        found = await self._source.load_credentials(api_key)
        hashes = found.secret_hashes if found else (_DECOY_HASH,)
        matched = False
        for secret_hash in hashes:
            if await asyncio.to_thread(verify_secret, secret_hash, secret):
                matched = True
                break
        if not matched or found is None:
            raise Unauthorized()
        if self._cache_seconds > 0:
            self._cache[cache_key] = (time.monotonic() + self._cache_seconds, found.account)
        return found.account
