"""Bearer JWTs signed by an application's private key (RS256), verified as Vonage verifies them.

Refused: any algorithm but RS256 (so neither `none` nor an HS256 token keyed with the public key
gets through), a bad signature, expired or not-yet-valid tokens, an `iat` in the future beyond
the clock-skew leeway, tokens older (or living longer) than the maximum lifetime, an unknown or
deleted application, one whose account is missing or disabled, an `acl` that does not cover the
path, and any `jti` seen before. Refusals count against the client's address and the application
the token names, and once either has failed too often its tokens are refused (429) before any
signature is verified (failure_throttle.py).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any, Protocol, TypeGuard

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import RSAAlgorithm

from tidings.auth.acl import acl_allows
from tidings.auth.failure_throttle import FailureThrottle
from tidings.auth.jws import CompactJws, MalformedToken, parse_compact
from tidings.auth.replay import ReplayCache
from tidings.domain.account import Account
from tidings.domain.application import Application
from tidings.domain.errors import Unauthorized
from tidings.domain.principal import Principal

DEFAULT_TOKEN_SECONDS = 900  # what Vonage assumes when a token carries no `exp`
_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


def _is_time(value: Any) -> bool:
    """A NumericDate: a JSON number (true and false are not), and a finite one."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


MAX_APPLICATION_ID_LENGTH = 64  # ids are UUIDs (36 characters)
MAX_JTI_LENGTH = 150


def _is_token_id(value: Any, max_length: int) -> TypeGuard[str]:
    # These ids go into SQL parameters and Redis keys before (application_id) or after the
    # signature check; a NUL or a lone surrogate there is a driver error, i.e. a 500, not a 401.
    return isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable()


class ApplicationSource(Protocol):
    async def load_application(self, application_id: str) -> Application | None: ...


class AccountSource(Protocol):
    async def get(self, api_key: str) -> Account | None: ...


class JwtAuthenticator:
    def __init__(
        self,
        applications: ApplicationSource,
        accounts: AccountSource,
        replays: ReplayCache,
        *,
        max_lifetime_seconds: int,
        leeway_seconds: int,
        cache_seconds: float,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self._applications = applications
        self._accounts = accounts
        self._throttle = throttle
        self._replays = replays
        self._max_lifetime = max_lifetime_seconds
        self._leeway = leeway_seconds
        self._cache_seconds = cache_seconds
        # application id -> (expires, application, parsed public key): parsing PEM per request is slow.
        self._keys: dict[str, tuple[float, Application, RSAPublicKey]] = {}
        # application id -> until when its tokens skip its failure bucket: one of them verified here
        # lately, so someone else's forgeries naming it do not lock it out (as a Basic secret
        # verified and cached keeps working while its key is locked).
        self._working: dict[str, float] = {}

    def forget(self, application_id: str) -> None:
        self._keys.pop(application_id, None)
        self._working.pop(application_id, None)

    async def authenticate(self, token: str, path: str, client: str | None = None) -> Principal:
        """The application the token names and its account. `client` is the caller's address,
        whose failures are throttled along with those of the application the token names: a token
        of a disabled account's application is a failure like any other refusal."""
        try:
            # Header and claims in one parse: the key to verify with depends on a claim.
            unverified: CompactJws | None = parse_compact(token)
        except MalformedToken:
            unverified = None
        named = unverified.claims.get("application_id") if unverified is not None else None
        application_id = named if _is_token_id(named, MAX_APPLICATION_ID_LENGTH) else None
        if self._throttle is None:
            application, account = await self._verify(unverified, application_id, path)
            return Principal(account=account, application=application)
        working = application_id is not None and self._working.get(application_id, 0.0) > time.monotonic()
        charged = await self._throttle.admit_token(None if working else application_id, client)
        try:
            application, account = await self._verify(unverified, application_id, path)
        except Unauthorized:
            await self._throttle.count(charged)
            raise
        if self._cache_seconds > 0:
            self._working[application.id] = time.monotonic() + self._cache_seconds
        return Principal(account=account, application=application)

    async def _verify(
        self, unverified: CompactJws | None, application_id: str | None, path: str
    ) -> tuple[Application, Account]:
        if unverified is None or application_id is None or unverified.header.get("alg") != "RS256":
            raise Unauthorized()
        application, key = await self._key_for(application_id)
        # PyJWT's own RS256 (PKCS#1 v1.5, SHA-256) verifier, on the parts already parsed.
        if not _RS256.verify(unverified.signing_input, key, unverified.signature):
            raise Unauthorized()
        claims = unverified.claims
        if "iat" not in claims or "jti" not in claims:
            raise Unauthorized()
        expires_at = self._check_lifetime(claims)
        if "acl" in claims and not acl_allows(claims["acl"], path):
            raise Unauthorized()
        jti = claims["jti"]
        if not _is_token_id(jti, MAX_JTI_LENGTH):
            raise Unauthorized()
        # Before the replay check, which records the jti: a refused token leaves nothing behind.
        account = await self._accounts.get(application.account_id)
        if account is None or not account.is_active:
            raise Unauthorized()
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        if not await self._replays.first_use(f"{application_id}:{jti}", expires_at, issued_at):
            raise Unauthorized()
        return application, account

    def _check_lifetime(self, claims: dict[str, Any]) -> datetime:
        """iat, exp and nbf, with the clock-skew leeway; returns when the token stops being valid."""
        now = time.time()
        issued_at = claims["iat"]
        if not _is_time(issued_at):
            raise Unauthorized()
        if issued_at > now + self._leeway or now - issued_at > self._max_lifetime + self._leeway:
            raise Unauthorized()
        expires = claims.get("exp", issued_at + DEFAULT_TOKEN_SECONDS)
        if not _is_time(expires) or expires - issued_at > self._max_lifetime:
            raise Unauthorized()
        if expires + self._leeway < now:
            raise Unauthorized()
        if "nbf" in claims and (not _is_time(claims["nbf"]) or claims["nbf"] > now + self._leeway):
            raise Unauthorized()
        return datetime.fromtimestamp(expires + self._leeway, UTC)

    async def _key_for(self, application_id: str) -> tuple[Application, RSAPublicKey]:
        cached = self._keys.get(application_id)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        application = await self._applications.load_application(application_id)
        if application is None:
            self._keys.pop(application_id, None)
            raise Unauthorized()
        try:
            key = load_pem_public_key(application.public_key.encode())
        except ValueError:
            raise Unauthorized() from None
        if not isinstance(key, RSAPublicKey):
            raise Unauthorized()
        if self._cache_seconds > 0:
            self._keys[application_id] = (time.monotonic() + self._cache_seconds, application, key)
        return application, key
