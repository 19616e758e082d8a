"""HTTP Basic authentication with an account's API key and secret.

Secrets are argon2 hashes, far too slow to verify on every request, so a successful check is
cached briefly in this process, keyed by the key and a SHA-256 of the presented secret (the
secret itself is never kept). Failures are not cached, and every check of an unknown key costs a
full hash too, so timing does not tell whether a key exists. Failures are throttled per key and
per client address before any hash is computed (failure_throttle.py); a check that could not be
made (the database out of reach) is not a failure.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from typing import Protocol

from tidings.auth.failure_throttle import FailureThrottle
from tidings.auth.secret_hashing import hash_secret, verify_secret
from tidings.domain.account import Account, AccountCredentials
from tidings.domain.errors import Unauthorized

_DECOY_HASH = hash_secret("decoy-secret-for-unknown-keys")
_API_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CredentialSource(Protocol):
    async def load_credentials(self, api_key: str) -> AccountCredentials | None: ...


def parse_basic(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        # Headers arrive decoded as latin-1, so bytes above 0x7f are characters b64decode refuses
        # with a plain ValueError (binascii.Error and UnicodeDecodeError are ValueErrors too).
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:
        return None
    api_key, sep, secret = decoded.partition(":")
    if not sep or not api_key or not secret:
        return None
    return api_key, secret


class BasicAuthenticator:
    def __init__(
        self, source: CredentialSource, cache_seconds: float, throttle: FailureThrottle | None = None
    ) -> None:
        self._source = source
        self._throttle = throttle
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, bytes], tuple[float, Account]] = {}
        # One verification in flight per (key, secret digest): a burst of requests with the same new
        # credentials waits for the first instead of running the KDF once each. Keyed by the
        # secret too, so an attacker's wrong guesses never queue up in front of the owner's check;
        # entries leave as soon as their check is done, so the table cannot grow without bound.
        self._inflight: dict[tuple[str, bytes], asyncio.Future[Account]] = {}
        # Bumped by invalidate(): a verification that read the secrets before a change is not cached.
        self._generations: dict[str, int] = {}

    async def authenticate(self, authorization: str | None, client: str | None = None) -> Account:
        """`client` is the caller's address, whose failures are throttled along with the key's."""
        credentials = parse_basic(authorization or "")
        if credentials is None:
            raise Unauthorized()
        api_key, secret = credentials
        if not _API_KEY.fullmatch(api_key):
            raise Unauthorized()  # no key of ours looks like this; nothing to look up
        cache_key = (api_key, hashlib.sha256(secret.encode()).digest())
        account = self._cached(cache_key) or await self._verify_once(api_key, secret, cache_key, client)
        if not account.is_active:
            raise Unauthorized()
        return account

    def invalidate(self, api_key: str) -> None:
        self._generations[api_key] = self._generations.get(api_key, 0) + 1
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

    async def _verify_once(
        self, api_key: str, secret: str, cache_key: tuple[str, bytes], client: str | None
    ) -> Account:
        running = self._inflight.get(cache_key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Account] = asyncio.get_running_loop().create_future()
        self._inflight[cache_key] = future
        try:
            account = await self._throttled_verify(api_key, secret, cache_key, client)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        else:
            future.set_result(account)
            return account
        finally:
            del self._inflight[cache_key]

    async def _throttled_verify(
        self, api_key: str, secret: str, cache_key: tuple[str, bytes], client: str | None
    ) -> Account:
        if self._throttle is None:
            return await self._verify(api_key, secret, cache_key)
        charged = await self._throttle.admit(api_key, client)
        try:
            account = await self._verify(api_key, secret, cache_key)
        except Unauthorized:
            raise  # a failure: its unit stays taken
        except Exception:
            # The check could not be made (the database is out of reach: a 503): the client did
            # not fail to authenticate. A cancelled check keeps its unit, or a guesser could
            # hang up before each answer and never be counted.
            await self._throttle.forgive(charged)
            raise
        if account.is_active:
            # The right secret of a disabled account is still refused (authenticate): a failure
            # like any other, as a disabled account's Bearer token is.
            await self._throttle.forgive(charged)
        return account

    async def _verify(self, api_key: str, secret: str, cache_key: tuple[str, bytes]) -> Account:
        generation = self._generations.get(api_key, 0)
        found = await self._source.load_credentials(api_key)
        # An unknown key, or an account without secrets, costs one hash like any other refusal.
        hashes = found.secret_hashes if found and found.secret_hashes else (_DECOY_HASH,)
        matched = False
        for secret_hash in hashes:
            if await asyncio.to_thread(verify_secret, secret_hash, secret):
                matched = True
                break
        if not matched or found is None:
            raise Unauthorized()
        if self._cache_seconds > 0 and self._generations.get(api_key, 0) == generation:
            self._cache[cache_key] = (time.monotonic() + self._cache_seconds, found.account)
        return found.account
