"""The Numbers API through the ASGI app, on both databases: shapes per numbers.yml, errors in
its `error-code` shape, isolation between accounts, and the official SDK driving it unchanged."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import HttpRequestError
from vonage_numbers import (
    ListOwnedNumbersFilter,
    NumberParams,
    SearchAvailableNumbersFilter,
    UpdateNumberParams,
)
from vonage_numbers.responses import AvailableNumber, OwnedNumber

from tidings.channels.simulator.number_pool import pool
from tidings.domain.application import Application
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.applications import insert_application

SUCCESS = {"error-code": "200", "error-code-label": "success"}
METHOD_FAILED = {"error-code": "420", "error-code-label": "method failed"}
AUTH_FAILED = {"error-code": "401", "error-code-label": "authentication failed"}
FIRST_GB_MOBILE = "447400123000"


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def make_application(runtime: Runtime, account_id: str) -> Application:
    now = datetime.now(UTC)
    application = Application(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name="numbers test",
        public_key="-----BEGIN PUBLIC KEY-----\nnot used here\n-----END PUBLIC KEY-----",
        capabilities={"messages": {"webhooks": {}, "version": "v1"}},
        created_at=now,
        updated_at=now,
    )
    async with runtime.database.begin() as conn:
        await insert_application(conn, application)
    return application


@pytest.fixture
async def other(runtime: Runtime) -> NewAccountCredentials:
    return await create_account(runtime.database, runtime.box, name="other")


async def buy(
    client: httpx.AsyncClient, who: NewAccountCredentials, msisdn: str, country: str = "GB"
) -> httpx.Response:
    return await client.post("/number/buy", data={"country": country, "msisdn": msisdn}, headers=basic(who))


async def owned(client: httpx.AsyncClient, who: NewAccountCredentials, **params: str) -> dict[str, Any]:
    response = await client.get("/account/numbers", params=params, headers=basic(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- search -----------------------------------------------------------------------------------


async def test_search_offers_the_simulator_pool(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    response = await client.get(
        "/number/search", params={"country": "GB", "size": "3"}, headers=basic(account)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(pool("GB"))
    assert body["numbers"] == [
        {
            "country": "GB",
            "msisdn": number.msisdn,
            "type": number.type.value,
            "cost": format(number.cost, "f"),
            "features": [feature.value for feature in number.features],
        }
        for number in pool("GB")[:3]
    ]
    again = await client.get("/number/search", params={"country": "GB", "size": "3"}, headers=basic(account))
    assert again.json() == body  # deterministic


async def test_search_filters_and_pages(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    async def search(**params: str) -> dict[str, Any]:
        response = await client.get(
            "/number/search", params={"country": "GB", **params}, headers=basic(account)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    mobile = await search(type="mobile-lvn", features="SMS", size="100")
    assert mobile["count"] == 1000
    assert {n["type"] for n in mobile["numbers"]} == {"mobile-lvn"}
    assert all("SMS" in n["features"] for n in mobile["numbers"])
    assert (await search(type="landline", features="SMS"))["count"] == 0  # GB landlines: voice only

    starts = await search(pattern="44740012300", search_pattern="0")
    assert starts["count"] == 10
    assert all(n["msisdn"].startswith("44740012300") for n in starts["numbers"])
    ends = await search(pattern="999", search_pattern="2", size="100")
    assert ends["count"] == 3 and all(n["msisdn"].endswith("999") for n in ends["numbers"])
    contains = await search(pattern="12312", search_pattern="1")
    assert all("12312" in n["msisdn"] for n in contains["numbers"])

    page1, page2 = await search(size="5"), await search(size="5", index="2")
    assert [n["msisdn"] for n in page1["numbers"]] + [n["msisdn"] for n in page2["numbers"]] == [
        n.msisdn for n in pool("GB")[:10]
    ]
    assert await search(pattern="000000000000000", search_pattern="1") == {"count": 0}
    unknown = await client.get("/number/search", params={"country": "XX"}, headers=basic(account))
    assert unknown.json() == {"count": 0}


async def test_search_parameter_errors_are_420(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    for params in (
        {},
        {"country": "GBR"},
        {"country": "GB", "type": "satellite"},
        {"country": "GB", "features": "SMS,FAX"},
        {"country": "GB", "size": "101"},
        {"country": "GB", "index": "0"},
        {"country": "GB", "index": "41169839849765457214770983731190"},
        {"country": "GB", "search_pattern": "3"},
        {"country": "GB", "pattern": "44%"},
    ):
        response = await client.get("/number/search", params=params, headers=basic(account))
        assert response.status_code == 420, params
        assert response.json()["error-code"] == "420"
        assert "invalid parameters" in response.json()["error-code-label"]


async def test_a_page_index_past_64_bits_is_a_parameter_error_and_the_last_allowed_an_empty_page(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    """The offset of a huge page index does not fit the database's integers (it was a 500)."""
    huge = await client.get("/account/numbers", params={"index": str(2**64)}, headers=basic(account))
    assert huge.status_code == 420, huge.text
    assert "invalid parameters" in huge.json()["error-code-label"]
    last = await client.get(
        "/account/numbers", params={"index": "10000000", "size": "100"}, headers=basic(account)
    )
    assert last.status_code == 200, last.text
    assert last.json()["count"] == 0 and last.json().get("numbers", []) == []


# --- authentication ---------------------------------------------------------------------------


async def test_every_endpoint_answers_401_in_its_own_shape(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{account.api_key}:nope".encode()).decode()}
    calls = [
        ("GET", "/account/numbers", {}),
        ("GET", "/number/search", {"country": "GB"}),
        ("POST", "/number/buy", {"country": "GB", "msisdn": FIRST_GB_MOBILE}),
        ("POST", "/number/cancel", {"country": "GB", "msisdn": FIRST_GB_MOBILE}),
        ("POST", "/number/update", {"country": "GB", "msisdn": FIRST_GB_MOBILE}),
    ]
    for method, path, params in calls:
        for headers in ({}, wrong):
            if method == "GET":
                response = await client.get(path, params=params, headers=headers)
            else:
                response = await client.post(path, data=params, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json() == AUTH_FAILED


async def test_api_key_and_secret_as_parameters(
    client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    credentials = {"api_key": account.api_key, "api_secret": account.api_secret}
    search = await client.get("/number/search", params={"country": "GB", "size": "1", **credentials})
    assert search.status_code == 200
    bought = await client.post(
        "/number/buy", data={"country": "GB", "msisdn": FIRST_GB_MOBILE, **credentials}
    )
    assert bought.json() == SUCCESS
    in_query = await client.post(
        "/number/update", params=credentials, data={"country": "GB", "msisdn": FIRST_GB_MOBILE}
    )
    assert in_query.json() == SUCCESS
    wrong = await client.get("/account/numbers", params={"api_key": account.api_key, "api_secret": "x"})
    assert (wrong.status_code, wrong.json()) == (401, AUTH_FAILED)


# --- buy, list, update, cancel ----------------------------------------------------------------


async def test_buy_list_update_cancel(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    bought = await buy(client, account, FIRST_GB_MOBILE)
    assert (bought.status_code, bought.json()) == (200, SUCCESS)

    assert await owned(client, account) == {
        "count": 1,
        "numbers": [
            {"country": "GB", "msisdn": FIRST_GB_MOBILE, "type": "mobile-lvn", "features": ["VOICE", "SMS"]}
        ],
    }
    gone = await client.get(
        "/number/search", params={"country": "GB", "pattern": FIRST_GB_MOBILE}, headers=basic(account)
    )
    assert gone.json() == {"count": 0}  # a rented number leaves the pool

    application = await make_application(runtime, account.api_key)
    updated = await client.post(
        "/number/update",
        data={
            "country": "GB",
            "msisdn": FIRST_GB_MOBILE,
            "app_id": application.id,
            "moHttpUrl": "https://example.com/inbound-sms",
            "voiceCallbackType": "tel",
            "voiceCallbackValue": "447700900999",
        },
        headers=basic(account),
    )
    assert (updated.status_code, updated.json()) == (200, SUCCESS)
    assert (await owned(client, account))["numbers"] == [
        {
            "country": "GB",
            "msisdn": FIRST_GB_MOBILE,
            "moHttpUrl": "https://example.com/inbound-sms",
            "type": "mobile-lvn",
            "features": ["VOICE", "SMS"],
            "messagesCallbackType": "app",
            "messagesCallbackValue": application.id,
            "voiceCallbackType": "tel",
            "voiceCallbackValue": "447700900999",
            "app_id": application.id,
        }
    ]
    assert (await owned(client, account, has_application="true"))["count"] == 1
    assert await owned(client, account, has_application="false") == {"count": 0}
    assert (await owned(client, account, application_id=application.id))["count"] == 1
    assert (await owned(client, account, country="gb"))["count"] == 1
    assert await owned(client, account, country="US") == {"count": 0}

    # Only what a request names changes; an empty value clears it.
    cleared = await client.post(
        "/number/update",
        data={"country": "GB", "msisdn": FIRST_GB_MOBILE, "app_id": "", "moHttpUrl": ""},
        headers=basic(account),
    )
    assert cleared.json() == SUCCESS
    (number,) = (await owned(client, account))["numbers"]
    assert "app_id" not in number and "moHttpUrl" not in number and "messagesCallbackType" not in number
    assert number["voiceCallbackType"] == "tel"

    # The deprecated messagesCallbackType/Value pair links an application too.
    legacy_link = await client.post(
        "/number/update",
        data={
            "country": "GB",
            "msisdn": FIRST_GB_MOBILE,
            "messagesCallbackType": "app",
            "messagesCallbackValue": application.id,
        },
        headers=basic(account),
    )
    assert legacy_link.json() == SUCCESS
    assert (await owned(client, account))["numbers"][0]["app_id"] == application.id

    cancelled = await client.post(
        "/number/cancel", data={"country": "GB", "msisdn": FIRST_GB_MOBILE}, headers=basic(account)
    )
    assert (cancelled.status_code, cancelled.json()) == (200, SUCCESS)
    assert await owned(client, account) == {"count": 0}
    back = await client.get(
        "/number/search", params={"country": "GB", "pattern": FIRST_GB_MOBILE}, headers=basic(account)
    )
    assert back.json()["count"] == 1  # back in the pool


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/in\x01bound",
        "https://example.com/in bound",
        "https://example.com/\x7f",
        "ftp://example.com/",
        "https://",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2048,
    ],
    ids=["control", "space", "delete", "ftp", "no-host", "bad-port", "too-long"],
)
async def test_update_refuses_callback_urls_the_account_settings_refuse(
    client: httpx.AsyncClient, account: NewAccountCredentials, url: str
) -> None:
    """`moHttpUrl` is checked as /account/settings checks its callback URLs; nothing is stored."""
    assert (await buy(client, account, FIRST_GB_MOBILE)).json() == SUCCESS
    settings = await client.post("/account/settings", data={"moCallBackUrl": url}, headers=basic(account))
    assert settings.status_code == 400, settings.text
    update = await client.post(
        "/number/update",
        data={"country": "GB", "msisdn": FIRST_GB_MOBILE, "moHttpUrl": url},
        headers=basic(account),
    )
    assert update.status_code == 420, update.text
    assert update.json()["error-code"] == "420"
    assert "moHttpUrl" in update.json()["error-code-label"]
    (number,) = (await owned(client, account))["numbers"]
    assert "moHttpUrl" not in number


async def test_buy_and_cancel_failures(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    not_in_pool = await buy(client, account, "447700900001")
    assert (not_in_pool.status_code, not_in_pool.json()) == (420, METHOD_FAILED)
    wrong_country = await buy(client, account, FIRST_GB_MOBILE, country="FR")
    assert (wrong_country.status_code, wrong_country.json()) == (420, METHOD_FAILED)
    assert (await buy(client, account, FIRST_GB_MOBILE)).json() == SUCCESS
    twice = await buy(client, account, FIRST_GB_MOBILE)
    assert (twice.status_code, twice.json()) == (420, METHOD_FAILED)

    never_owned = await client.post(
        "/number/cancel", data={"country": "GB", "msisdn": "447400123001"}, headers=basic(account)
    )
    assert (never_owned.status_code, never_owned.json()) == (420, METHOD_FAILED)
    missing = await client.post("/number/buy", data={"country": "GB"}, headers=basic(account))
    assert missing.status_code == 420 and "msisdn" in missing.json()["error-code-label"]
    subaccount = await client.post(
        "/number/buy",
        data={"country": "GB", "msisdn": "447400123001", "target_api_key": "someone"},
        headers=basic(account),
    )
    assert subaccount.status_code == 420
    bad_url = await client.post(
        "/number/update",
        data={"country": "GB", "msisdn": FIRST_GB_MOBILE, "moHttpUrl": "ftp://example.com"},
        headers=basic(account),
    )
    assert bad_url.status_code == 420
    half_voice = await client.post(
        "/number/update",
        data={"country": "GB", "msisdn": FIRST_GB_MOBILE, "voiceCallbackType": "sip"},
        headers=basic(account),
    )
    assert half_voice.status_code == 420


# --- isolation --------------------------------------------------------------------------------


async def test_another_accounts_number_is_invisible(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, other: NewAccountCredentials
) -> None:
    assert (await buy(client, account, FIRST_GB_MOBILE)).json() == SUCCESS
    mine_before = await owned(client, account)

    assert await owned(client, other) == {"count": 0}
    taken = await buy(client, other, FIRST_GB_MOBILE)
    assert (taken.status_code, taken.json()) == (420, METHOD_FAILED)
    other_app = await make_application(runtime, other.api_key)
    for path, extra in (("/number/update", {"app_id": other_app.id}), ("/number/cancel", {})):
        response = await client.post(
            path, data={"country": "GB", "msisdn": FIRST_GB_MOBILE, **extra}, headers=basic(other)
        )
        # Exactly the answer for a number that does not exist.
        assert (response.status_code, response.json()) == (420, METHOD_FAILED), path

    assert await owned(client, account) == mine_before
    search = await client.get(
        "/number/search", params={"country": "GB", "pattern": FIRST_GB_MOBILE}, headers=basic(other)
    )
    assert search.json() == {"count": 0}


async def test_linking_to_a_foreign_application_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, other: NewAccountCredentials
) -> None:
    assert (await buy(client, account, FIRST_GB_MOBILE)).json() == SUCCESS
    foreign = await make_application(runtime, other.api_key)
    for field in ({"app_id": foreign.id}, {"app_id": str(uuid.uuid4())}):
        response = await client.post(
            "/number/update",
            data={"country": "GB", "msisdn": FIRST_GB_MOBILE, **field},
            headers=basic(account),
        )
        assert response.status_code == 420
        assert response.json()["error-code"] == "420"
        assert response.json()["error-code-label"].startswith("method failed")
        assert "app_id" in response.json()["error-code-label"]
    assert "app_id" not in (await owned(client, account))["numbers"][0]


# --- the official SDK, unchanged --------------------------------------------------------------


class AsgiAdapter(BaseAdapter):
    """Hands the SDK's `requests` calls to the ASGI app on the test's event loop."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._client = client
        self._loop = loop

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        body = request.body
        content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else None
        headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
        call = self._client.request(
            request.method or "GET", str(request.url), headers=headers, content=content
        )
        answer = asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=30)
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = str(request.url)
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


async def test_the_python_sdk_manages_numbers(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    vonage = Vonage(
        Auth(api_key=account.api_key, api_secret=account.api_secret),
        HttpClientOptions(rest_host="tidings.test", api_host="tidings.test"),
    )
    vonage.numbers.http_client._session.mount("https://", AsgiAdapter(client, asyncio.get_running_loop()))
    numbers = vonage.numbers
    application = await make_application(runtime, account.api_key)

    available, count, next_page = await asyncio.to_thread(
        numbers.search_available_numbers,
        SearchAvailableNumbersFilter(country="GB", size=2, type="mobile-lvn", features="SMS"),
    )
    assert count == 1000 and next_page == 2
    assert all(isinstance(n, AvailableNumber) and n.type == "mobile-lvn" for n in available)
    msisdn = available[0].msisdn
    assert msisdn is not None

    status = await asyncio.to_thread(numbers.buy_number, NumberParams(country="GB", msisdn=msisdn))
    assert (status.error_code, status.error_code_label) == ("200", "success")
    with pytest.raises(HttpRequestError):  # HTTP 420: already rented
        await asyncio.to_thread(numbers.buy_number, NumberParams(country="GB", msisdn=msisdn))

    status = await asyncio.to_thread(
        numbers.update_number,
        UpdateNumberParams(
            country="GB", msisdn=msisdn, app_id=application.id, mo_http_url="https://example.com/mo"
        ),
    )
    assert status.error_code == "200"
    mine, total, _ = await asyncio.to_thread(
        numbers.list_owned_numbers, ListOwnedNumbersFilter(application_id=application.id)
    )
    assert total == 1
    assert isinstance(mine[0], OwnedNumber)
    assert (mine[0].msisdn, mine[0].app_id, mine[0].mo_http_url) == (
        msisdn,
        application.id,
        "https://example.com/mo",
    )
    assert (mine[0].messages_callback_type, mine[0].messages_callback_value) == ("app", application.id)

    status = await asyncio.to_thread(numbers.cancel_number, NumberParams(country="GB", msisdn=msisdn))
    assert status.error_code == "200"
    assert await asyncio.to_thread(numbers.list_owned_numbers) == ([], 0, None)
