"""Send rate limits on POST /v1/messages, per account and per application: a send past the rate
is answered 429 with the Messages API's Rate Limit Hit body and Retry-After, and stores nothing;
shared through Redis by every API process. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from vonage_account.responses import SettingsResponse

from tests.api.support import assert_problem, basic
from tests.auth.test_jwt_attacks import create_application
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services import account_settings
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import messages

REDIS_URL = "redis://127.0.0.1:6379/0"
SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "hi"}
RATE_LIMIT_HIT = ("https://developer.vonage.com/api-errors/messages#1010", "Rate Limit Hit")
# One send per five seconds: the second of two sends made now is refused however slow the machine.
SLOW = 0.2


async def stored_messages(runtime: Runtime) -> int:
    async with runtime.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


def throttled_count() -> float:
    return REGISTRY.get_sample_value("tidings_throttled_total", {"reason": "send_rate"}) or 0.0


async def api(runtime: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://t")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """API role only: the sends stay accepted, nothing else writes."""
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_an_account_past_its_rate_gets_vonages_429(
    runtime: Runtime, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    await account_settings.set_rate_limit(runtime.database, account.api_key, SLOW)
    counted_before = throttled_count()
    assert (await client.post("/v1/messages", json=SMS, headers=basic(account))).status_code == 202
    refused = await client.post("/v1/messages", json=SMS, headers=basic(account))
    assert throttled_count() == counted_before + 1
    body = assert_problem(refused, 429, *RATE_LIMIT_HIT)
    assert body["detail"] == "Please wait, then retry your request"
    assert body["retry_after"] == 5 and refused.headers["Retry-After"] == "5"
    assert await stored_messages(runtime) == 1
    # Another account is not held back by this one's rate.
    other = await create_account(runtime.database, runtime.box, name="other")
    assert (await client.post("/v1/messages", json=SMS, headers=basic(other))).status_code == 202


async def test_the_default_applies_unless_an_account_has_its_own(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"messages_per_second": SLOW}), role=Role.API)
    await runtime.start()
    try:
        limited = await create_account(runtime.database, runtime.box, name="limited")
        free = await create_account(runtime.database, runtime.box, name="free")
        await account_settings.set_rate_limit(runtime.database, free.api_key, 0)
        async with await api(runtime) as client:
            first = [await client.post("/v1/messages", json=SMS, headers=basic(limited)) for _ in range(2)]
            assert [r.status_code for r in first] == [202, 429]
            unlimited = [await client.post("/v1/messages", json=SMS, headers=basic(free)) for _ in range(5)]
            assert [r.status_code for r in unlimited] == [202] * 5
    finally:
        await runtime.stop()


async def test_an_application_has_a_rate_of_its_own_within_its_account(
    runtime: Runtime, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    app = await create_application(runtime, account.api_key)
    await account_settings.set_rate_limit(runtime.database, account.api_key, SLOW, application_id=app.id)

    async def send_as_app() -> httpx.Response:
        return await client.post(
            "/v1/messages", json=SMS, headers={"Authorization": f"Bearer {app.sdk_token()}"}
        )

    assert (await send_as_app()).status_code == 202
    assert_problem(await send_as_app(), 429, *RATE_LIMIT_HIT)
    # The account's own Basic sends are not the application's.
    assert (await client.post("/v1/messages", json=SMS, headers=basic(account))).status_code == 202


async def test_the_rate_is_shared_by_api_processes_through_redis(settings: Settings) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    one, two = Runtime(shared, role=Role.API), Runtime(shared, role=Role.API)
    await one.start()
    await two.start()
    try:
        account = await create_account(one.database, one.box, name="shared")
        await account_settings.set_rate_limit(one.database, account.api_key, SLOW)
        async with await api(one) as a, await api(two) as b:
            assert (await a.post("/v1/messages", json=SMS, headers=basic(account))).status_code == 202
            assert_problem(
                await b.post("/v1/messages", json=SMS, headers=basic(account)), 429, *RATE_LIMIT_HIT
            )
        assert await stored_messages(one) == 1
    finally:
        await one.stop()
        await two.stop()


async def test_a_refused_idempotent_send_can_be_sent_again_later(
    runtime: Runtime, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    await account_settings.set_rate_limit(runtime.database, account.api_key, SLOW)
    assert (await client.post("/v1/messages", json=SMS, headers=basic(account))).status_code == 202
    keyed = basic(account) | {"Idempotency-Key": "k-1"}
    assert (await client.post("/v1/messages", json=SMS, headers=keyed)).status_code == 429
    await account_settings.set_rate_limit(runtime.database, account.api_key, 0)
    runtime.authenticator.invalidate(account.api_key)  # as the cache would expire
    accepted = await client.post("/v1/messages", json=SMS, headers=keyed)
    assert accepted.status_code == 202 and "Idempotent-Replayed" not in accepted.headers


async def test_with_redis_unreachable_sends_are_limited_in_this_process(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), role=Role.API)
    await runtime.start()
    try:
        account = await create_account(runtime.database, runtime.box, name="t")
        await account_settings.set_rate_limit(runtime.database, account.api_key, SLOW)
        async with await api(runtime) as client:
            answers = [await client.post("/v1/messages", json=SMS, headers=basic(account)) for _ in range(2)]
        assert [a.status_code for a in answers] == [202, 429]
        assert answers[1].json()["title"] == "Rate Limit Hit"
        assert not runtime.limiter.is_shared
    finally:
        await runtime.stop()


# --- what the Account API's settings call reports -------------------------------------------


async def reported_rate(client: httpx.AsyncClient, credentials: NewAccountCredentials) -> object:
    answer = await client.post("/account/settings", headers=basic(credentials))
    assert answer.status_code == 200, answer.text
    return answer.json()["max-outbound-request"]


async def test_the_settings_call_reports_the_accounts_send_rate(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"messages_per_second": 12}), role=Role.API)
    await runtime.start()
    try:
        rates = {"default": None, "own": 5, "fraction": 2.5, "slow": SLOW, "unlimited": 0}
        accounts = {name: await create_account(runtime.database, runtime.box, name=name) for name in rates}
        for name, rate in rates.items():
            if rate is not None:
                await account_settings.set_rate_limit(runtime.database, accounts[name].api_key, rate)
        async with await api(runtime) as client:
            reported = {name: await reported_rate(client, accounts[name]) for name in rates}
            answer = await client.post("/account/settings", headers=basic(accounts["own"]))
    finally:
        await runtime.stop()
    # Whole messages a second, as the field is an integer: a fraction as the sends allowed at
    # once, and no limit as Vonage's default.
    assert reported == {"default": 12, "own": 5, "fraction": 2, "slow": 1, "unlimited": 30}
    assert SettingsResponse(**answer.json()).max_outbound_request == 5
    # Tidings limits neither inbound messages nor API calls: those stay Vonage's figures.
    assert (answer.json()["max-inbound-request"], answer.json()["max-calls-per-second"]) == (30, 30)
