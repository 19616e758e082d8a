"""Basic auth: header parsing, the verification cache, single-flight, and what is never cached."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tidings.auth import basic as basic_module
from tidings.auth.basic import BasicAuthenticator, parse_basic
from tidings.auth.secret_hashing import hash_secret, verify_secret
from tidings.domain.account import Account, AccountCredentials, AccountStatus
from tidings.domain.errors import Unauthorized

API_KEY = "abcd1234"
SECRET = "S3cretValue9"
OTHER_SECRET = "An0therSecret"
SECRET_HASH = hash_secret(SECRET)
OTHER_HASH = hash_secret(OTHER_SECRET)


def header(api_key: str, secret: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()


def account(api_key: str = API_KEY, status: AccountStatus = AccountStatus.ACTIVE) -> Account:
    return Account(api_key=api_key, name="test", status=status, created_at=datetime(2025, 1, 1, tzinfo=UTC))


class CountingSource:
    """A credential source that records every load, so tests can tell a cache hit from a miss."""

    def __init__(self, *credentials: AccountCredentials, delay: float = 0.0) -> None:
        self.credentials = {c.account.api_key: c for c in credentials}
        self.loads: list[str] = []
        self.delay = delay

    async def load_credentials(self, api_key: str) -> AccountCredentials | None:
        self.loads.append(api_key)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.credentials.get(api_key)


def source_with(
    status: AccountStatus = AccountStatus.ACTIVE, hashes: tuple[str, ...] = (SECRET_HASH,)
) -> CountingSource:
    return CountingSource(AccountCredentials(account=account(status=status), secret_hashes=hashes))


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification the authenticator runs, by the hash it was checked against."""
    calls: list[str] = []

    def counting(secret_hash: str, secret: str) -> bool:
        calls.append(secret_hash)
        return verify_secret(secret_hash, secret)

    monkeypatch.setattr(basic_module, "verify_secret", counting)
    return calls


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """A monotonic clock the test moves by hand (only the auth module sees it)."""
    now = [1000.0]
    monkeypatch.setattr(basic_module, "time", SimpleNamespace(monotonic=lambda: now[0]))

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (header("key1", "secret"), ("key1", "secret")),
        (header("key1", "secret", scheme="basic"), ("key1", "secret")),
        (header("key1", "secret", scheme="BASIC"), ("key1", "secret")),
        (header("key1", "sec:ret:with:colons"), ("key1", "sec:ret:with:colons")),
        (header("key1", "sëcrét✓"), ("key1", "sëcrét✓")),
        ("Basic " + base64.b64encode(b"key1:secret").decode() + "  ", ("key1", "secret")),
    ],
)
def test_parse_basic_accepts_well_formed_headers(authorization: str, expected: tuple[str, str]) -> None:
    assert parse_basic(authorization) == expected


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "Digest username=key1",
        "Basic !!!not-base64!!!",
        "Basic a2V5MTpzZWNyZXQ",  # base64 without its padding
        "Basic " + base64.b64encode(b"key1secret").decode(),  # no colon
        "Basic " + base64.b64encode(b":secret").decode(),  # no key
        "Basic " + base64.b64encode(b"key1:").decode(),  # no secret
        "Basic " + base64.b64encode(b"key1:\xff\xfe").decode(),  # not UTF-8
        "key1:secret",
    ],
)
def test_parse_basic_refuses_malformed_headers(authorization: str) -> None:
    assert parse_basic(authorization) is None


@pytest.mark.parametrize("authorization", [None, "", "Bearer x", "Basic !!!"])
async def test_malformed_headers_are_refused_without_touching_the_store(
    authorization: str | None, verifications: list[str]
) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=10)
    with pytest.raises(Unauthorized):
        await auth.authenticate(authorization)
    assert source.loads == []
    assert verifications == []


# --- verification and the cache ------------------------------------------------------------------


async def test_correct_credentials_return_the_account() -> None:
    auth = BasicAuthenticator(source_with(), cache_seconds=10)
    found = await auth.authenticate(header(API_KEY, SECRET))
    assert found == account()


async def test_a_cache_hit_does_not_verify_again(verifications: list[str]) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=10)
    for _ in range(5):
        assert (await auth.authenticate(header(API_KEY, SECRET))).api_key == API_KEY
    assert source.loads == [API_KEY]
    assert verifications == [SECRET_HASH]


async def test_the_cache_is_keyed_by_the_presented_secret(verifications: list[str]) -> None:
    """A cached success for one secret says nothing about another secret for the same key."""
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=10)
    await auth.authenticate(header(API_KEY, SECRET))
    with pytest.raises(Unauthorized):
        await auth.authenticate(header(API_KEY, SECRET + "x"))
    assert source.loads == [API_KEY, API_KEY]


async def test_the_cache_expires(clock: Callable[[float], None], verifications: list[str]) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=10)
    await auth.authenticate(header(API_KEY, SECRET))
    clock(9.9)
    await auth.authenticate(header(API_KEY, SECRET))
    assert len(source.loads) == 1
    clock(0.2)
    await auth.authenticate(header(API_KEY, SECRET))
    assert len(source.loads) == 2
    assert len(verifications) == 2


async def test_an_expired_entry_reflects_a_changed_secret(clock: Callable[[float], None]) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=10)
    await auth.authenticate(header(API_KEY, SECRET))
    source.credentials[API_KEY] = AccountCredentials(account=account(), secret_hashes=(OTHER_HASH,))
    clock(11)
    with pytest.raises(Unauthorized):
        await auth.authenticate(header(API_KEY, SECRET))


async def test_cache_seconds_zero_verifies_every_time(verifications: list[str]) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=0)
    for _ in range(3):
        await auth.authenticate(header(API_KEY, SECRET))
    assert len(source.loads) == 3
    assert len(verifications) == 3


async def test_invalidate_drops_only_that_key(verifications: list[str]) -> None:
    other = AccountCredentials(account=account("efgh5678"), secret_hashes=(OTHER_HASH,))
    source = CountingSource(AccountCredentials(account=account(), secret_hashes=(SECRET_HASH,)), other)
    auth = BasicAuthenticator(source, cache_seconds=60)
    await auth.authenticate(header(API_KEY, SECRET))
    await auth.authenticate(header("efgh5678", OTHER_SECRET))
    auth.invalidate(API_KEY)
    await auth.authenticate(header(API_KEY, SECRET))
    await auth.authenticate(header("efgh5678", OTHER_SECRET))
    assert source.loads == [API_KEY, "efgh5678", API_KEY]


async def test_invalidate_makes_a_revoked_secret_fail_at_once() -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=60)
    await auth.authenticate(header(API_KEY, SECRET))
    source.credentials[API_KEY] = AccountCredentials(account=account(), secret_hashes=(OTHER_HASH,))
    auth.invalidate(API_KEY)
    with pytest.raises(Unauthorized):
        await auth.authenticate(header(API_KEY, SECRET))
    assert (await auth.authenticate(header(API_KEY, OTHER_SECRET))).api_key == API_KEY


async def test_any_of_several_secrets_is_accepted() -> None:
    """Two live secrets (rotation): either one authenticates."""
    auth = BasicAuthenticator(source_with(hashes=(OTHER_HASH, SECRET_HASH)), cache_seconds=10)
    assert (await auth.authenticate(header(API_KEY, SECRET))).api_key == API_KEY
    assert (await auth.authenticate(header(API_KEY, OTHER_SECRET))).api_key == API_KEY


# --- refusals ------------------------------------------------------------------------------------


async def test_disabled_account_is_refused_even_with_the_right_secret() -> None:
    auth = BasicAuthenticator(source_with(status=AccountStatus.DISABLED), cache_seconds=10)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header(API_KEY, SECRET))


async def test_an_account_disabled_after_caching_is_refused_once_invalidated() -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=60)
    await auth.authenticate(header(API_KEY, SECRET))
    source.credentials[API_KEY] = AccountCredentials(
        account=account(status=AccountStatus.DISABLED), secret_hashes=(SECRET_HASH,)
    )
    auth.invalidate(API_KEY)
    with pytest.raises(Unauthorized):
        await auth.authenticate(header(API_KEY, SECRET))


async def test_a_wrong_secret_is_never_cached(verifications: list[str]) -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=60)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(header(API_KEY, "wrong-secret"))
    assert source.loads == [API_KEY] * 3
    assert verifications == [SECRET_HASH] * 3
    # and the right secret still works afterwards
    assert (await auth.authenticate(header(API_KEY, SECRET))).api_key == API_KEY


async def test_concurrent_identical_wrong_secrets_share_one_check_and_are_not_cached() -> None:
    source = source_with()
    source.delay = 0.02  # slow enough that the four requests overlap
    auth = BasicAuthenticator(source, cache_seconds=60)
    results = await asyncio.gather(
        *(auth.authenticate(header(API_KEY, "wrong-secret")) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(result, Unauthorized) for result in results)
    assert len(source.loads) == 1
    with pytest.raises(Unauthorized):
        await auth.authenticate(header(API_KEY, "wrong-secret"))
    assert len(source.loads) == 2  # a refusal is never cached: the next attempt is checked again


async def test_concurrent_different_wrong_secrets_are_each_verified() -> None:
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=60)
    results = await asyncio.gather(
        *(auth.authenticate(header(API_KEY, f"wrong-secret-{n}")) for n in range(4)), return_exceptions=True
    )
    assert all(isinstance(result, Unauthorized) for result in results)
    assert len(source.loads) == 4


async def test_wrong_guesses_do_not_delay_the_owners_check() -> None:
    """Guesses stuck in their checks must not hold the owner's check back (no per-key queue)."""
    gate = asyncio.Event()

    class GatedSource(CountingSource):
        held = 0

        async def load_credentials(self, api_key: str) -> AccountCredentials | None:
            if self.held < 5:
                self.held += 1
                await gate.wait()  # the guesses' checks hang until the owner is through
            return await super().load_credentials(api_key)

    gated = GatedSource(*source_with().credentials.values())
    auth = BasicAuthenticator(gated, cache_seconds=60)
    guesses = [asyncio.create_task(auth.authenticate(header(API_KEY, f"guess-{n}"))) for n in range(5)]
    await asyncio.sleep(0.01)
    account = await asyncio.wait_for(auth.authenticate(header(API_KEY, SECRET)), timeout=5)
    assert account.api_key == API_KEY
    gate.set()
    results = await asyncio.gather(*guesses, return_exceptions=True)
    assert all(isinstance(result, Unauthorized) for result in results)


async def test_an_unknown_key_costs_a_full_hash_and_is_refused(verifications: list[str]) -> None:
    """Timing must not reveal whether a key exists: an unknown key is checked against a decoy hash."""
    source = source_with()
    auth = BasicAuthenticator(source, cache_seconds=60)
    with pytest.raises(Unauthorized):
        await auth.authenticate(header("nosuchkey", SECRET))
    assert source.loads == ["nosuchkey"]
    assert len(verifications) == 1
    assert verifications[0].startswith("$argon2id$")
    assert verifications[0] != SECRET_HASH


async def test_an_unknown_key_is_refused_even_with_the_decoy_secret() -> None:
    auth = BasicAuthenticator(source_with(), cache_seconds=60)
    with pytest.raises(Unauthorized):
        await auth.authenticate(header("nosuchkey", "decoy-secret-for-unknown-keys"))


# --- single-flight -------------------------------------------------------------------------------


async def test_concurrent_first_requests_verify_once(verifications: list[str]) -> None:
    source = source_with()
    source.delay = 0.02  # the first load is slow enough for the others to pile up behind it
    auth = BasicAuthenticator(source, cache_seconds=60)
    results = await asyncio.gather(*(auth.authenticate(header(API_KEY, SECRET)) for _ in range(20)))
    assert all(result.api_key == API_KEY for result in results)
    assert source.loads == [API_KEY]
    assert verifications == [SECRET_HASH]


async def test_different_keys_do_not_wait_on_each_other() -> None:
    """The single-flight lock is per key: a slow verification for one key does not hold up another."""
    slow_key, fast_key = "slow0001", "fast0001"
    gate = asyncio.Event()

    class GatedSource(CountingSource):
        async def load_credentials(self, api_key: str) -> AccountCredentials | None:
            if api_key == slow_key:
                await gate.wait()
            return await super().load_credentials(api_key)

    source = GatedSource(
        AccountCredentials(account=account(slow_key), secret_hashes=(SECRET_HASH,)),
        AccountCredentials(account=account(fast_key), secret_hashes=(SECRET_HASH,)),
    )
    auth = BasicAuthenticator(source, cache_seconds=60)
    slow = asyncio.create_task(auth.authenticate(header(slow_key, SECRET)))
    await asyncio.sleep(0)
    fast = await asyncio.wait_for(auth.authenticate(header(fast_key, SECRET)), timeout=5)
    assert fast.api_key == fast_key
    assert not slow.done()
    gate.set()
    assert (await slow).api_key == slow_key
