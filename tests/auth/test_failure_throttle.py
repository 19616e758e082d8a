"""Failed Basic authentication is throttled per API key and per client address before the KDF
runs: a guesser is answered 429 without hashing, the owner's correct secret keeps working."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from tests.auth.test_jwt_attacks import APP_KEY, OTHER_RSA_KEY, PUBLIC_PEM, SMS, create_application
from tidings.api.app import create_app
from tidings.auth import basic as basic_module
from tidings.auth import jwt_auth as jwt_auth_module
from tidings.auth.basic import BasicAuthenticator
from tidings.auth.failure_throttle import FailureThrottle
from tidings.auth.jwt_auth import JwtAuthenticator
from tidings.auth.secret_hashing import hash_secret, verify_secret
from tidings.config import Settings
from tidings.domain.account import Account, AccountCredentials, AccountStatus
from tidings.domain.application import Application
from tidings.domain.errors import Throttled, Unauthorized
from tidings.limits.gcra import Rate
from tidings.limits.limiter import RateLimiter
from tidings.runtime import Runtime
from tidings.services.accounts import create_account
from tidings.store.accounts import AccountCredentialStore
from tidings.store.database import Database
from tidings.store.outage import database_unavailable
from tidings.store.tables import accounts

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "S3cretValue9"
SECRET_HASH = hash_secret(SECRET)


def header(api_key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()


class Source:
    def __init__(self, *api_keys: str) -> None:
        created = datetime(2025, 1, 1, tzinfo=UTC)
        self.credentials = {
            key: AccountCredentials(Account(key, "t", AccountStatus.ACTIVE, created), (SECRET_HASH,))
            for key in api_keys
        }

    async def load_credentials(self, api_key: str) -> AccountCredentials | None:
        return self.credentials.get(api_key)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification run, by the secret presented."""
    calls: list[str] = []

    def counting(secret_hash: str, secret: str) -> bool:
        calls.append(secret)
        return verify_secret(secret_hash, secret)

    monkeypatch.setattr(basic_module, "verify_secret", counting)
    return calls


@pytest.fixture(params=["local", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    built = RateLimiter.from_url(
        REDIS_URL if request.param == "redis" else None, prefix=f"tidings-test:{uuid.uuid4().hex}:"
    )
    yield built
    await built.close()


def authenticator(limiter: RateLimiter, *keys: str, cache_seconds: float = 0) -> BasicAuthenticator:
    throttle = FailureThrottle(limiter, per_key=Rate.per_minute(3), per_address=Rate.per_minute(5))
    return BasicAuthenticator(Source(*keys), cache_seconds=cache_seconds, throttle=throttle)


async def test_a_key_that_failed_too_often_is_refused_without_hashing(
    limiter: RateLimiter, hashes: list[str]
) -> None:
    auth = authenticator(limiter, "owner")
    for n in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header("owner", f"guess{n}"), "10.0.0.1")
    assert len(hashes) == 3
    with pytest.raises(Throttled) as refused:
        await auth.authenticate(header("owner", "guess3"), "10.0.0.2")  # another address: the key is locked
    assert len(hashes) == 3
    assert refused.value.retry_after == 20  # three a minute: one back every 20 s
    # Locked out means locked out, for the owner too, unless its secret is already verified here.
    with pytest.raises(Throttled):
        await auth.authenticate(header("owner", SECRET), "10.0.0.3")


async def test_only_failures_count(limiter: RateLimiter, hashes: list[str]) -> None:
    auth = authenticator(limiter, "owner")  # nothing cached: every request runs the KDF
    for _ in range(6):
        assert (await auth.authenticate(header("owner", SECRET), "10.0.0.1")).api_key == "owner"
    with pytest.raises(Unauthorized):
        await auth.authenticate(header("owner", "wrong"), "10.0.0.1")
    assert (await auth.authenticate(header("owner", SECRET), "10.0.0.1")).api_key == "owner"
    assert len(hashes) == 8


async def test_a_disabled_accounts_right_secret_counts_like_any_refusal(
    limiter: RateLimiter, hashes: list[str]
) -> None:
    source = Source()
    created = datetime(2025, 1, 1, tzinfo=UTC)
    disabled = Account("owner", "t", AccountStatus.DISABLED, created)
    source.credentials["owner"] = AccountCredentials(disabled, (SECRET_HASH,))
    throttle = FailureThrottle(limiter, per_key=Rate.per_minute(3), per_address=Rate.per_minute(5))
    auth = BasicAuthenticator(source, cache_seconds=0, throttle=throttle)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header("owner", SECRET), "10.0.0.1")
    with pytest.raises(Throttled):
        await auth.authenticate(header("owner", SECRET), "10.0.0.1")
    assert len(hashes) == 3


async def test_an_address_guessing_many_keys_is_locked_out_alone(
    limiter: RateLimiter, hashes: list[str]
) -> None:
    auth = authenticator(limiter, "owner")
    for n in range(5):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header(f"key{n}", "guess"), "10.6.6.6")
    with pytest.raises(Throttled):
        await auth.authenticate(header("key9", "guess"), "10.6.6.6")
    assert len(hashes) == 5
    assert (await auth.authenticate(header("owner", SECRET), "10.0.0.1")).api_key == "owner"


async def test_a_verified_secret_keeps_working_while_its_key_is_locked(limiter: RateLimiter) -> None:
    auth = authenticator(limiter, "owner", cache_seconds=60)
    await auth.authenticate(header("owner", SECRET), "10.0.0.1")
    for n in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header("owner", f"guess{n}"), "10.6.6.6")
    with pytest.raises(Throttled):
        await auth.authenticate(header("owner", "guess"), "10.6.6.6")
    assert (await auth.authenticate(header("owner", SECRET), "10.0.0.1")).api_key == "owner"


async def test_a_concurrent_storm_of_guesses_runs_the_kdf_only_within_the_limit(
    limiter: RateLimiter, hashes: list[str]
) -> None:
    auth = authenticator(limiter, "owner")
    outcomes = await asyncio.gather(
        *(auth.authenticate(header("owner", f"guess{n}"), f"10.1.0.{n}") for n in range(60)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Unauthorized) for o in outcomes) == 3
    assert sum(isinstance(o, Throttled) for o in outcomes) == 57
    assert len(hashes) == 3


async def test_a_check_the_database_could_not_answer_is_not_a_failure(limiter: RateLimiter) -> None:
    """Nothing listens on port 1: every check fails as the outage it is (a 503), and gives its
    unit back, so that the key and the address keep their whole budget for when it is over."""
    throttle = FailureThrottle(limiter, per_key=Rate.per_minute(3), per_address=Rate.per_minute(5))
    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/tidings")
    try:
        down = BasicAuthenticator(AccountCredentialStore(unreachable), cache_seconds=0, throttle=throttle)
        for _ in range(6):
            with pytest.raises(OSError) as raised:
                await down.authenticate(header("owner", SECRET), "10.0.0.1")
            assert database_unavailable(raised.value)
    finally:
        await unreachable.dispose()
    back = BasicAuthenticator(Source("owner"), cache_seconds=0, throttle=throttle)
    for n in range(3):
        with pytest.raises(Unauthorized):
            await back.authenticate(header("owner", f"guess{n}"), "10.0.0.1")
    with pytest.raises(Throttled):
        await back.authenticate(header("owner", "guess3"), "10.0.0.1")


# --- through the API, on both databases, with the runtime's limiter in Redis -------------------


@pytest.fixture
async def redis_runtime(settings: Settings, tmp_path: Path) -> AsyncIterator[Runtime]:
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "auth_failures_per_key": 2, "auth_failures_per_address": 1000}
    )
    runtime = Runtime(shared)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_the_api_answers_a_locked_out_key_429_with_retry_after(redis_runtime: Runtime) -> None:
    credentials = await create_account(redis_runtime.database, redis_runtime.box, name="t")
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1"
    transport = httpx.ASGITransport(app=create_app(redis_runtime), client=(address, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        wrong = {"Authorization": header(credentials.api_key, "not-the-secret")}
        for _ in range(2):
            assert (await client.get("/v2/applications", headers=wrong)).status_code == 401
        refused = await client.get("/v2/applications", headers=wrong)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"] == "30"
        body = refused.json()
        assert body["type"] == "https://developer.vonage.com/api-errors#throttled"
        assert (body["title"], body["retry_after"]) == ("Too many requests", 30)
        # The rest-host APIs answer in their own shape, with the same header.
        numbers = await client.get(
            "/account/numbers", params={"api_key": credentials.api_key, "api_secret": "nope"}
        )
        assert numbers.status_code == 429 and numbers.headers["Retry-After"] == "30"


# --- Bearer JWTs: refusals count against the address and the named application ---------------


class Applications:
    def __init__(self, *ids: str) -> None:
        created = datetime(2025, 1, 1, tzinfo=UTC)
        self.applications = {
            app_id: Application(app_id, "owner", "t", PUBLIC_PEM, {}, created, created) for app_id in ids
        }

    async def load_application(self, application_id: str) -> Application | None:
        return self.applications.get(application_id)


class Accounts:
    """Every application's owner, in the given status."""

    def __init__(self, status: AccountStatus) -> None:
        self.owner = Account("owner", "t", status, datetime(2025, 1, 1, tzinfo=UTC))

    async def get(self, api_key: str) -> Account | None:
        return self.owner if api_key == self.owner.api_key else None


class FirstUse:
    async def first_use(self, jti: str, expires_at: datetime, issued_at: datetime | None = None) -> bool:
        return True


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every RSA signature verification run, by the signing input."""
    calls: list[bytes] = []
    real = jwt_auth_module._RS256.verify

    def counting(message: bytes, key: Any, signature: bytes) -> bool:
        calls.append(message)
        return bool(real(message, key, signature))

    monkeypatch.setattr(jwt_auth_module._RS256, "verify", counting)
    return calls


def jwt_authenticator(
    limiter: RateLimiter,
    *,
    per_application: int = 100,
    per_address: int = 100,
    owner: AccountStatus = AccountStatus.ACTIVE,
) -> JwtAuthenticator:
    throttle = FailureThrottle(
        limiter, per_key=Rate.per_minute(per_application), per_address=Rate.per_minute(per_address)
    )
    return JwtAuthenticator(
        Applications("app-1", "app-2"),
        Accounts(owner),
        FirstUse(),
        max_lifetime_seconds=86400,
        leeway_seconds=5,
        cache_seconds=60,
        throttle=throttle,
    )


def token(application_id: str = "app-1", *, key: Any = APP_KEY, age: int = 0) -> str:
    issued = int(time.time()) - age
    claims = {"application_id": application_id, "iat": issued, "exp": issued + 900, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="RS256")


async def test_an_address_sending_bad_signatures_is_refused_without_verifying(
    limiter: RateLimiter, verifications: list[bytes]
) -> None:
    auth = jwt_authenticator(limiter, per_address=5)
    for n in range(5):
        with pytest.raises(Unauthorized):
            await auth.authenticate(token(f"app-{n % 2 + 1}", key=OTHER_RSA_KEY), "/v1/messages", "10.6.6.6")
    assert len(verifications) == 5
    with pytest.raises(Throttled) as refused:
        await auth.authenticate(token(key=OTHER_RSA_KEY), "/v1/messages", "10.6.6.6")
    assert refused.value.retry_after == 12  # five a minute: one back every 12 s
    with pytest.raises(Throttled):  # locked out means locked out, good tokens too
        await auth.authenticate(token(), "/v1/messages", "10.6.6.6")
    assert len(verifications) == 5
    assert (await auth.authenticate(token(), "/v1/messages", "10.0.0.1")).application_id == "app-1"


async def test_an_application_refused_too_often_is_refused_without_verifying(
    limiter: RateLimiter, verifications: list[bytes]
) -> None:
    auth = jwt_authenticator(limiter, per_application=3)
    for n in range(3):  # expired: signed well, refused after the signature
        with pytest.raises(Unauthorized):
            await auth.authenticate(token(age=3600), "/v1/messages", f"10.0.0.{n}")
    with pytest.raises(Throttled):
        await auth.authenticate(token(), "/v1/messages", "10.0.0.9")
    assert len(verifications) == 3
    assert (await auth.authenticate(token("app-2"), "/v1/messages", "10.0.0.9")).application_id == "app-2"


async def test_an_application_working_here_is_not_locked_out_by_forgeries_naming_it(
    limiter: RateLimiter, verifications: list[bytes]
) -> None:
    auth = jwt_authenticator(limiter, per_application=3)
    assert (await auth.authenticate(token(), "/v1/messages", "10.0.0.1")).application_id == "app-1"
    for n in range(5):  # still each counted against its own address
        with pytest.raises(Unauthorized):
            await auth.authenticate(token(key=OTHER_RSA_KEY), "/v1/messages", f"10.6.6.{n}")
    assert (await auth.authenticate(token(), "/v1/messages", "10.0.0.1")).application_id == "app-1"
    assert len(verifications) == 7


async def test_a_disabled_accounts_tokens_count_like_any_refusal(
    limiter: RateLimiter, verifications: list[bytes]
) -> None:
    auth = jwt_authenticator(limiter, per_application=3, per_address=4, owner=AccountStatus.DISABLED)
    for _ in range(3):  # signed well, by an application whose account is disabled
        with pytest.raises(Unauthorized):
            await auth.authenticate(token(), "/v1/messages", "10.6.6.6")
    with pytest.raises(Throttled):  # the application's bucket is empty
        await auth.authenticate(token(), "/v1/messages", "10.6.6.7")
    with pytest.raises(Unauthorized):  # the fourth from this address
        await auth.authenticate(token("app-2"), "/v1/messages", "10.6.6.6")
    with pytest.raises(Throttled):  # the address's bucket is empty, app-2's is not
        await auth.authenticate(token("app-2"), "/v1/messages", "10.6.6.6")
    with pytest.raises(Unauthorized):
        await auth.authenticate(token("app-2"), "/v1/messages", "10.6.6.7")
    assert len(verifications) == 5


async def test_unknown_applications_and_garbage_count_against_the_address(
    limiter: RateLimiter, verifications: list[bytes]
) -> None:
    auth = jwt_authenticator(limiter, per_address=4)
    for n in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(token(f"no-such-app-{n}"), "/v1/messages", "10.6.6.6")
    with pytest.raises(Unauthorized):
        await auth.authenticate("not.a.token", "/v1/messages", "10.6.6.6")
    with pytest.raises(Throttled):
        await auth.authenticate(token(), "/v1/messages", "10.6.6.6")
    assert verifications == []


async def test_good_tokens_do_not_count(limiter: RateLimiter, verifications: list[bytes]) -> None:
    auth = jwt_authenticator(limiter, per_application=2, per_address=2)
    for _ in range(6):
        assert (await auth.authenticate(token(), "/v1/messages", "10.0.0.1")).application_id == "app-1"
    assert len(verifications) == 6


async def test_good_tokens_cost_no_limiter_call() -> None:
    # Redis here never answers: a single look at a bucket would switch the limiter to this
    # process's own buckets.
    limiter = RateLimiter.from_url("redis://127.0.0.1:1/0")
    try:
        auth = jwt_authenticator(limiter)
        for _ in range(5):
            assert (await auth.authenticate(token(), "/v1/messages", "10.0.0.1")).application_id == "app-1"
        assert limiter.is_shared
    finally:
        await limiter.close()


async def test_a_process_that_sees_an_address_fail_looks_at_the_shared_buckets(
    verifications: list[bytes],
) -> None:
    """Two API processes sharing Redis: the second verifies one failing token of an address the
    first locked out, then refuses it unverified."""
    prefix = f"tidings-test:{uuid.uuid4().hex}:"
    first, second = (RateLimiter.from_url(REDIS_URL, prefix=prefix) for _ in range(2))
    try:
        one, other = jwt_authenticator(first, per_address=5), jwt_authenticator(second, per_address=5)
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await one.authenticate(token(key=OTHER_RSA_KEY), "/v1/messages", "10.6.6.6")
        with pytest.raises(Throttled):
            await one.authenticate(token(key=OTHER_RSA_KEY), "/v1/messages", "10.6.6.6")
        with pytest.raises(Unauthorized):
            await other.authenticate(token("app-2", key=OTHER_RSA_KEY), "/v1/messages", "10.6.6.6")
        with pytest.raises(Throttled):
            await other.authenticate(token("app-2"), "/v1/messages", "10.6.6.6")
    finally:
        await first.close()
        await second.close()
    assert len(verifications) == 6


async def test_the_api_answers_a_locked_out_application_429(redis_runtime: Runtime) -> None:
    credentials = await create_account(redis_runtime.database, redis_runtime.box, name="t")
    app = await create_application(redis_runtime, credentials.api_key)
    transport = httpx.ASGITransport(app=create_app(redis_runtime), client=("10.9.9.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        forged = {"Authorization": f"Bearer {token(app.id, key=OTHER_RSA_KEY)}"}
        for _ in range(2):
            assert (await client.post("/v1/messages", json=SMS, headers=forged)).status_code == 401
        refused = await client.post("/v1/messages", json=SMS, headers=forged)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["Retry-After"] == "30"
        body = refused.json()
        assert body["type"] == "https://developer.vonage.com/api-errors#throttled"
        assert (body["title"], body["retry_after"]) == ("Too many requests", 30)
        genuine = {"Authorization": f"Bearer {app.sdk_token()}"}
        assert (await client.post("/v1/messages", json=SMS, headers=genuine)).status_code == 429


async def test_the_api_counts_a_disabled_accounts_tokens_as_failures(redis_runtime: Runtime) -> None:
    credentials = await create_account(redis_runtime.database, redis_runtime.box, name="t")
    app = await create_application(redis_runtime, credentials.api_key)
    async with redis_runtime.database.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.api_key == credentials.api_key).values(status="disabled")
        )
    transport = httpx.ASGITransport(app=create_app(redis_runtime), client=("10.9.9.8", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        for _ in range(2):
            genuine = {"Authorization": f"Bearer {app.sdk_token()}"}
            assert (await client.post("/v1/messages", json=SMS, headers=genuine)).status_code == 401
        genuine = {"Authorization": f"Bearer {app.sdk_token()}"}
        refused = await client.post("/v1/messages", json=SMS, headers=genuine)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
