"""The Account API through the ASGI app, on both databases: balance, top-up, settings, secrets,
pricing, and the credit limit under concurrent sends.

Bodies are checked against shared/specs/account.yml and parsed with the SDK's own response
models (vonage_account.responses), the second oracle.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from vonage_account.responses import (
    Balance,
    GetMultiplePricingResponse,
    GetPricingResponse,
    SettingsResponse,
    TopUpResponse,
    VonageApiSecret,
)

from tidings.api.app import create_app
from tidings.config import Settings
from tidings.domain.pricing import PriceEntry
from tidings.runtime import Runtime
from tidings.services import account_settings
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store import account_settings as settings_store
from tidings.store.prices import upsert_price
from tidings.store.tables import accounts, messages

GSM_161 = "a" * 161  # one character over a single GSM-7 segment: two segments
LOW_BALANCE = {
    "type": "https://developer.vonage.com/api-errors/#low-balance",
    "title": "Low balance",
    "detail": "This request could not be performed due to your account balance being low.",
}


def basic(api_key: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{api_key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def auth(credentials: NewAccountCredentials) -> dict[str, str]:
    return basic(credentials.api_key, credentials.api_secret)


async def set_prices(runtime: Runtime, *entries: PriceEntry) -> None:
    async with runtime.database.begin() as conn:
        for entry in entries:
            await upsert_price(conn, entry)
    await runtime.pricing.reload()


def sms(to: str, text: str = "hello") -> dict[str, Any]:
    return {"channel": "sms", "message_type": "text", "to": to, "from": "Acme", "text": text}


async def balance_of(client: httpx.AsyncClient, credentials: NewAccountCredentials) -> Decimal:
    response = await client.get("/account/get-balance", headers=auth(credentials))
    assert response.status_code == 200, response.text
    return Decimal(str(response.json()["value"]))


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(body.pop("instance"), str)
    return body


# --- balance and top-up -------------------------------------------------------------------


async def test_balance_of_a_new_account(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    response = await client.get("/account/get-balance", headers=auth(account))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"value": 0, "autoReload": False}
    parsed = Balance(**response.json())
    assert (parsed.value, parsed.auto_reload) == (0.0, False)


async def test_balance_takes_api_key_and_secret_parameters(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    params = {"api_key": account.api_key, "api_secret": account.api_secret}
    assert (await client.get("/account/get-balance", params=params)).status_code == 200

    params["api_secret"] = "Wrong-secret-1"
    refused = await client.get("/account/get-balance", params=params)
    assert refused.status_code == 401
    assert refused.json() == {"error-code": "401", "error-code-label": "authentication failed"}


@pytest.mark.parametrize(
    "headers",
    [{}, basic("deadbeef", "Secret-123"), {"Authorization": "Bearer x.y.z"}],
    ids=["none", "unknown-key", "bearer"],
)
async def test_balance_refuses_bad_credentials_in_the_spec_shape(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/account/get-balance", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"error-code": "401", "error-code-label": "authentication failed"}


async def test_balance_is_debited_price_times_segments(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await set_prices(runtime, PriceEntry("sms", "44", Decimal("0.0400"), "EUR", "GB"))
    sends = [sms("447700900001", GSM_161), sms("447700900002"), sms("33612345678")]

    for body in sends:
        response = await client.post("/v1/messages", json=body, headers=auth(account))
        assert response.status_code == 202, response.text

    # 2 segments x 0.04 + 1 x 0.04 + the configured default (0.0070) for an unpriced country
    assert await balance_of(client, account) == Decimal("-0.127")
    async with runtime.database.engine.connect() as conn:
        rows = (
            await conn.execute(select(messages.c.segments, messages.c.price).order_by(messages.c.price))
        ).all()
    assert sorted((r.segments, Decimal(r.price)) for r in rows) == [
        (1, Decimal("0.007")),
        (1, Decimal("0.04")),
        (2, Decimal("0.08")),
    ]

    await account_settings.top_up(runtime.database, account.api_key, Decimal("1.00"))
    assert await balance_of(client, account) == Decimal("0.873")


async def test_top_up_needs_auto_reload(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    refused = await client.post("/account/top-up", data={"trx": "8ef2447e69604f64"}, headers=auth(account))
    assert refused.status_code == 401
    assert refused.json() == {"error-code": "401", "error-code-label": "not auto-reload enabled"}

    async with runtime.database.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.api_key == account.api_key).values(auto_reload=True)
        )
    accepted = await client.post("/account/top-up", data={"trx": "8ef2447e69604f64"}, headers=auth(account))
    assert accepted.status_code == 200
    assert accepted.json() == {"error-code": "200", "error-code-label": "success"}
    assert TopUpResponse(**accepted.json()).error_code_label == "success"
    assert (await client.get("/account/get-balance", headers=auth(account))).json()["autoReload"] is True

    missing = await client.post("/account/top-up", headers=auth(account))
    assert missing.status_code == 400
    assert missing.json()["error-code"] == "400"


# --- settings -----------------------------------------------------------------------------


async def test_settings_round_trip_and_clearing(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    mo, dr = "https://example.com/webhooks/inbound-sms", "https://example.com/webhooks/delivery-receipt"

    changed = await client.post(
        "/account/settings", data={"moCallBackUrl": mo, "drCallBackUrl": dr}, headers=auth(account)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "mo-callback-url": mo,
        "dr-callback-url": dr,
        "max-outbound-request": 30,
        "max-inbound-request": 30,
        "max-calls-per-second": 30,
    }
    assert SettingsResponse(**changed.json()).dr_callback_url == dr

    unchanged = await client.post("/account/settings", headers=auth(account))
    assert unchanged.json() == changed.json()

    # The SDK spells the fields moCallbackUrl/drCallbackUrl; an empty value clears.
    cleared = await client.post("/account/settings", data={"moCallbackUrl": ""}, headers=auth(account))
    assert (cleared.json()["mo-callback-url"], cleared.json()["dr-callback-url"]) == ("", dr)
    async with runtime.database.engine.connect() as conn:
        stored = await settings_store.get_callbacks(conn, account.api_key)
    assert stored is not None
    assert (stored.mo_callback_url, stored.dr_callback_url) == (None, dr)


@pytest.mark.parametrize(
    "value", ["not a url", "ftp://example.com/x", "https://", "https://exa mple.com", "http://h:99999/"]
)
async def test_settings_refuse_invalid_urls_and_change_nothing(
    client: httpx.AsyncClient, account: NewAccountCredentials, value: str
) -> None:
    await client.post(
        "/account/settings", data={"drCallBackUrl": "https://example.com/dr"}, headers=auth(account)
    )

    refused = await client.post(
        "/account/settings", data={"moCallBackUrl": value, "drCallBackUrl": ""}, headers=auth(account)
    )

    assert refused.status_code == 400
    assert refused.json()["error-code"] == "400"
    assert refused.json()["error-code-label"].startswith("moCallBackUrl must")
    now = (await client.post("/account/settings", headers=auth(account))).json()
    assert now["dr-callback-url"] == "https://example.com/dr"


async def test_settings_refuse_bad_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/account/settings", data={"moCallBackUrl": "https://example.com/x"})
    assert response.status_code == 401
    assert response.json() == {"error-code": "401", "error-code-label": "authentication failed"}


# --- secrets ------------------------------------------------------------------------------


def assert_secret_info(body: dict[str, Any], api_key: str) -> str:
    assert set(body) == {"_links", "id", "created_at"}
    assert body["_links"] == {"self": {"href": f"/accounts/{api_key}/secrets/{body['id']}"}}
    VonageApiSecret(**body)
    assert len(body["created_at"]) == 20 and body["created_at"].endswith("Z")
    return str(body["id"])


async def test_secrets_crud_and_rules(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    path = f"/accounts/{account.api_key}/secrets"

    listed = await client.get(path, headers=auth(account))
    assert listed.status_code == 200
    assert listed.json()["_links"] == {"self": {"href": path}}
    (original,) = listed.json()["_embedded"]["secrets"]
    original_id = assert_secret_info(original, account.api_key)

    for weak in [
        "Short1a",
        "a" * 20 + "A" * 5 + "1",
        "alllower123",
        "ALLUPPER123",
        "NoDigitsHere",
        "Tab\tSecret1",
    ]:
        refused = await client.post(path, json={"secret": weak}, headers=auth(account))
        assert refused.status_code == 400, weak
        assert without_instance(refused.json()) == {
            "type": "https://developer.vonage.com/api-errors/account/secret-management#validation",
            "title": "Bad Request",
            "detail": "The request failed due to secret validation errors",
            "invalid_parameters": [{"name": "secret", "reason": "Does not meet complexity requirements"}],
        }
    assert (await client.post(path, json={}, headers=auth(account))).status_code == 400
    assert (
        await client.post(path, content=b"{", headers=auth(account) | {"content-type": "application/json"})
    ).status_code == 400

    created = await client.post(path, json={"secret": "example-4PI-secret"}, headers=auth(account))
    assert created.status_code == 201, created.text
    new_id = assert_secret_info(created.json(), account.api_key)

    fetched = await client.get(f"{path}/{new_id}", headers=auth(account))
    assert fetched.status_code == 200
    assert fetched.json() == created.json()
    ids = [s["id"] for s in (await client.get(path, headers=auth(account))).json()["_embedded"]["secrets"]]
    assert ids == [original_id, new_id]

    third = await client.post(path, json={"secret": "Another-s3cret"}, headers=auth(account))
    assert third.status_code == 400
    assert third.json()["type"].endswith("/account/secret-management#validation")

    for missing_id in ["07239aeb-d756-4c32-a1de-cf64f8b21827", "not-a-uuid"]:
        missing = await client.get(f"{path}/{missing_id}", headers=auth(account))
        assert missing.status_code == 404
        assert without_instance(missing.json()) == {
            "type": "https://developer.vonage.com/api-errors#invalid-id",
            "title": "Invalid ID",
            "detail": f"ID '{missing_id}' could not be found",
        }
        assert (await client.delete(f"{path}/{missing_id}", headers=auth(account))).status_code == 404


async def test_revoked_secret_stops_working_at_once_and_the_last_one_stays(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    path = f"/accounts/{account.api_key}/secrets"
    old = auth(account)
    new = basic(account.api_key, "Rotated-s3cret")
    assert (await client.get("/account/get-balance", headers=old)).status_code == 200  # cached now
    original_id = (await client.get(path, headers=old)).json()["_embedded"]["secrets"][0]["id"]
    assert (await client.get("/account/get-balance", headers=new)).status_code == 401

    created = await client.post(path, json={"secret": "Rotated-s3cret"}, headers=old)
    assert created.status_code == 201
    assert (await client.get("/account/get-balance", headers=new)).status_code == 200

    revoked = await client.delete(f"{path}/{original_id}", headers=new)
    assert revoked.status_code == 204
    assert revoked.content == b""
    assert (await client.get("/account/get-balance", headers=old)).status_code == 401
    assert (await client.post("/v1/messages", json=sms("447700900000"), headers=old)).status_code == 401
    assert (await client.post("/v1/messages", json=sms("447700900000"), headers=new)).status_code == 202

    last = await client.delete(f"{path}/{created.json()['id']}", headers=new)
    assert last.status_code == 403
    assert without_instance(last.json()) == {
        "type": "https://developer.vonage.com/api-errors/account/secret-management#delete-last-secret",
        "title": "Secret Deletion Forbidden",
        "detail": "Can not delete the last secret. The account must always have at least 1 secret "
        "active at any time",
    }
    assert (await client.get("/account/get-balance", headers=new)).status_code == 200


async def test_concurrent_revocations_keep_one_secret(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    path = f"/accounts/{account.api_key}/secrets"
    await client.post(path, json={"secret": "Second-s3cret"}, headers=auth(account))
    ids = [s["id"] for s in (await client.get(path, headers=auth(account))).json()["_embedded"]["secrets"]]
    second = basic(account.api_key, "Second-s3cret")
    # Both callers known to the authenticator's cache, so that both are authenticated before
    # either revocation commits: a first use of the second secret would wait on its hash check
    # while the other revocation removed it (a 401, and the guard below never reached).
    assert (await client.get(path, headers=second)).status_code == 200

    results = await asyncio.gather(
        client.delete(f"{path}/{ids[0]}", headers=second),
        client.delete(f"{path}/{ids[1]}", headers=auth(account)),
    )

    assert sorted(r.status_code for r in results) == [204, 403]
    survivors = [
        h
        for h in (auth(account), second)
        if (await client.get("/account/get-balance", headers=h)).status_code == 200
    ]
    assert len(survivors) == 1
    assert len((await client.get(path, headers=survivors[0])).json()["_embedded"]["secrets"]) == 1


async def test_secrets_of_another_account_are_not_revealed(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    other = await create_account(runtime.database, runtime.box, name="other")
    other_path = f"/accounts/{other.api_key}/secrets"
    other_id = (await client.get(other_path, headers=auth(other))).json()["_embedded"]["secrets"][0]["id"]

    def attempts(api_key: str, secret_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
        base = f"/accounts/{api_key}/secrets"
        return [
            ("GET", base, None),
            ("POST", base, {"secret": "Takeover-s3cret"}),
            ("GET", f"{base}/{secret_id}", None),
            ("DELETE", f"{base}/{secret_id}", None),
        ]

    for existing, unknown in zip(
        attempts(other.api_key, other_id), attempts("deadbeef", other_id), strict=True
    ):
        answers = []
        for method, url, body in (existing, unknown):
            response = await client.request(method, url, json=body, headers=auth(account))
            assert response.status_code == 404, (method, url, response.text)
            answers.append(without_instance(response.json()))
        assert answers[0] == {
            "type": "https://developer.vonage.com/api-errors#invalid-api-key",
            "title": "Invalid API Key",
            "detail": f"API key '{other.api_key}' not found",
        }
        assert answers[1] == answers[0] | {"detail": "API key 'deadbeef' not found"}

    # Untouched: the other account still has its one secret, and it still works.
    listed = await client.get(other_path, headers=auth(other))
    assert [s["id"] for s in listed.json()["_embedded"]["secrets"]] == [other_id]
    # Without valid credentials the answer is 401 whichever key is in the path.
    for key in (other.api_key, "deadbeef"):
        response = await client.get(f"/accounts/{key}/secrets", headers=basic(key, "Wrong-secret-1"))
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


# --- pricing ------------------------------------------------------------------------------


PRICES = (
    PriceEntry("sms", "44", Decimal("0.0400"), "EUR", "GB"),
    PriceEntry("sms", "447700", Decimal("0.0500"), "EUR", None, "Test Mobile"),
    PriceEntry("sms", "1", Decimal("0.0100"), "EUR", "US"),
    PriceEntry("sms", "1416", Decimal("0.0200"), "EUR"),  # Toronto: phonenumbers says CA
    PriceEntry("whatsapp", "44", Decimal("0.0300"), "EUR", "GB"),
)


async def test_country_pricing(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await set_prices(runtime, *PRICES)

    gb = await client.get(
        "/account/get-pricing/outbound/sms", params={"country": "GB"}, headers=auth(account)
    )
    assert gb.status_code == 200, gb.text
    assert gb.json() == {
        "countryCode": "GB",
        "countryName": "United Kingdom",
        "countryDisplayName": "United Kingdom",
        "currency": "EUR",
        "defaultPrice": "0.04000000",
        "dialingPrefix": "44",
        "networks": [
            {"price": "0.05000000", "currency": "EUR", "networkName": "Test Mobile", "ranges": [447700]}
        ],
    }
    parsed = GetPricingResponse(**gb.json())
    assert parsed.networks is not None and parsed.networks[0].network_name == "Test Mobile"

    ca = (
        await client.get("/account/get-pricing/outbound/sms", params={"country": "ca"}, headers=auth(account))
    ).json()
    assert (ca["countryCode"], ca["defaultPrice"], [n["ranges"] for n in ca["networks"]]) == (
        "CA",
        "0.01000000",
        [[1416]],
    )
    fr = (
        await client.get("/account/get-pricing/outbound/sms", params={"country": "FR"}, headers=auth(account))
    ).json()
    assert (fr["defaultPrice"], fr["networks"], fr["dialingPrefix"]) == (
        "0.00700000",
        [],
        "33",
    )  # the default
    wa = (
        await client.get(
            "/account/get-pricing/outbound/whatsapp", params={"country": "GB"}, headers=auth(account)
        )
    ).json()
    assert (wa["defaultPrice"], wa["networks"]) == ("0.03000000", [])
    transit = await client.get(
        "/account/get-pricing/outbound/sms-transit", params={"country": "GB"}, headers=auth(account)
    )
    assert transit.json() == gb.json()


async def test_full_and_prefix_pricing(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await set_prices(runtime, *PRICES)

    full = await client.get("/account/get-full-pricing/outbound/sms", headers=auth(account))
    assert full.status_code == 200
    parsed = GetMultiplePricingResponse(**full.json())
    assert parsed.count == len(parsed.countries) > 200
    by_code = {c["countryCode"]: c for c in full.json()["countries"]}
    assert by_code["GB"]["defaultPrice"] == "0.04000000"
    assert by_code["US"]["defaultPrice"] == "0.01000000"

    nanp = await client.get(
        "/account/get-prefix-pricing/outbound/sms", params={"prefix": "1"}, headers=auth(account)
    )
    codes = [c["countryCode"] for c in nanp.json()["countries"]]
    assert {"US", "CA", "BS"} <= set(codes) and "GB" not in codes
    assert nanp.json()["count"] == len(codes)
    uk = await client.get(
        "/account/get-prefix-pricing/outbound/sms", params={"prefix": "44"}, headers=auth(account)
    )
    assert {c["countryCode"] for c in uk.json()["countries"]} == {"GB", "GG", "IM", "JE"}
    # Guernsey numbers share +44: priced by the "44" entry, and the GB networks stay GB's.
    gg = next(c for c in uk.json()["countries"] if c["countryCode"] == "GG")
    assert (gg["defaultPrice"], gg["networks"]) == ("0.04000000", [])
    GetMultiplePricingResponse(**uk.json())


@pytest.mark.parametrize(
    ("url", "params", "parameter", "message"),
    [
        ("/account/get-pricing/outbound/sms", {}, "country", "Is required"),
        ("/account/get-pricing/outbound/sms", {"country": "G1"}, "country", "Is invalid"),
        ("/account/get-pricing/outbound/sms", {"country": "QQ"}, "country", "Is invalid"),
        ("/account/get-pricing/outbound/voice", {"country": "GB"}, "type", "Is invalid"),
        ("/account/get-full-pricing/outbound/fax", {}, "type", "Is invalid"),
        ("/account/get-prefix-pricing/outbound/sms", {}, "prefix", "Is required"),
        ("/account/get-prefix-pricing/outbound/sms", {"prefix": "4x"}, "prefix", "Is invalid"),
    ],
)
async def test_pricing_errors(
    client: httpx.AsyncClient,
    account: NewAccountCredentials,
    url: str,
    params: dict[str, str],
    parameter: str,
    message: str,
) -> None:
    response = await client.get(url, params=params, headers=auth(account))

    assert response.status_code == 400
    assert response.json() == {
        "type": "BAD_REQUEST",
        "error_title": "Bad Request",
        "invalid_parameters": {"parameter": parameter, "message": message},
    }


async def test_pricing_refuses_bad_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/account/get-full-pricing/outbound/sms", headers=basic("deadbeef", "Secret-123")
    )
    assert response.status_code == 401
    assert response.json() == {"code": "401", "currency": "EUR", "error-code-label": "authentication failed"}


async def test_unknown_prefix_has_no_countries(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    response = await client.get(
        "/account/get-prefix-pricing/outbound/sms", params={"prefix": "0"}, headers=auth(account)
    )
    assert response.json() == {"count": 0, "countries": []}


# --- the credit limit under concurrency ---------------------------------------------------


@asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process on the same database: its own group-commit writer and caches."""
    other = Runtime(settings)
    await other.start()
    try:
        transport = httpx.ASGITransport(app=create_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
            yield client
    finally:
        await other.stop()


@pytest.mark.parametrize("processes", [1, 2])
async def test_only_one_send_fits_a_credit_limit_of_one_message(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    settings: Settings,
    processes: int,
) -> None:
    price = Decimal("0.0400")
    await set_prices(runtime, PriceEntry("sms", "44", price, "EUR", "GB"))
    await account_settings.set_credit_limit(runtime.database, account.api_key, price)
    async with AsyncExitStack() as stack:
        clients = [client] + [
            await stack.enter_async_context(api_process(settings)) for _ in range(processes - 1)
        ]
        await race_sends(clients, account, price, runtime)


async def race_sends(
    clients: list[httpx.AsyncClient], account: NewAccountCredentials, price: Decimal, runtime: Runtime
) -> None:
    for each in clients:  # authenticated once each, so the sends race on the debit alone
        assert (await each.get("/account/get-balance", headers=auth(account))).status_code == 200
    n = 12

    responses = await asyncio.gather(
        *(
            clients[i % len(clients)].post(
                "/v1/messages", json=sms(f"4477009000{i:02d}"), headers=auth(account)
            )
            for i in range(n)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [402] * (n - 1), [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 402):
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert without_instance(refused.json()) == LOW_BALANCE
    assert await balance_of(clients[0], account) == -price
    async with runtime.database.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(func.count()).select_from(messages).where(messages.c.account_id == account.api_key)
            )
        ).scalar_one()
    assert stored == 1
