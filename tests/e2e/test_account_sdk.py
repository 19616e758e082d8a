"""The Account API through a real `tidings serve --tls` with the official SDK's Account client:
balance, settings, pricing, secrets rotation, and the operator's CLI acting on a running server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from vonage import Auth, HttpClientOptions, Vonage
from vonage_account import GetCountryPricingRequest, GetPrefixPricingRequest, ServiceType
from vonage_account.errors import InvalidSecretError
from vonage_http_client.errors import AuthenticationError, ForbiddenError, HttpRequestError, NotFoundError
from vonage_messages import Sms

from tests.e2e.conftest import MakeServer
from tests.e2e.server import TidingsServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(make_server: MakeServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[TidingsServer]:
    # A short authentication cache, so that the CLI's changes reach the server within the test.
    server = make_server(TIDINGS_AUTH_CACHE_SECONDS="0.5")
    # requests (under the SDK) reads the CA bundle from the environment on every request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
    yield server


def sdk_client(server: TidingsServer, api_key: str, api_secret: str) -> Vonage:
    host = f"127.0.0.1:{server.tls_port}"  # the Account client uses both rest_host and api_host
    return Vonage(
        Auth(api_key=api_key, api_secret=api_secret),
        HttpClientOptions(api_host=host, rest_host=host, timeout=10, max_retries=0),
    )


def test_balance_settings_and_pricing(server: TidingsServer) -> None:
    credentials = server.create_account()
    server.cli("accounts", "top-up", credentials.api_key, "5.25")
    server.cli("prices", "set", "--channel", "sms", "--prefix", "44", "--price", "0.0400", "--country", "GB")
    server.start()
    account = sdk_client(server, credentials.api_key, credentials.api_secret).account

    balance = account.get_balance()
    assert (balance.value, balance.auto_reload) == (5.25, False)

    settings = account.update_default_sms_webhook(
        mo_callback_url="https://example.com/inbound-sms", dr_callback_url="https://example.com/dlr"
    )
    assert (settings.mo_callback_url, settings.dr_callback_url) == (
        "https://example.com/inbound-sms",
        "https://example.com/dlr",
    )
    assert (settings.max_outbound_request, settings.max_inbound_request, settings.max_calls_per_second) == (
        30,
        30,
        30,
    )
    cleared = account.update_default_sms_webhook(mo_callback_url="")
    assert (cleared.mo_callback_url, cleared.dr_callback_url) == ("", "https://example.com/dlr")
    with pytest.raises(HttpRequestError) as invalid:
        account.update_default_sms_webhook(dr_callback_url="ftp://example.com/dlr")
    assert invalid.value.response.status_code == 400

    with pytest.raises(AuthenticationError) as top_up:  # the spec's 401: auto-reload is off
        account.top_up("8ef2447e69604f642ae59363aa5f781b")
    assert top_up.value.response.json() == {
        "error-code": "401",
        "error-code-label": "not auto-reload enabled",
    }

    gb = account.get_country_pricing(GetCountryPricingRequest(country_code="GB"))
    assert (gb.country_code, gb.country_name, gb.dialing_prefix, gb.default_price, gb.currency) == (
        "GB",
        "United Kingdom",
        "44",
        "0.04000000",
        "EUR",
    )
    uk = account.get_prefix_pricing(GetPrefixPricingRequest(prefix="44"))
    assert {c.country_code for c in uk.countries} == {"GB", "GG", "IM", "JE"}
    everywhere = account.get_all_countries_pricing(ServiceType.SMS)
    assert everywhere.count == len(everywhere.countries) > 200


def test_secret_rotation(server: TidingsServer) -> None:
    credentials = server.create_account()
    server.start()
    old_client = sdk_client(server, credentials.api_key, credentials.api_secret)

    (original,) = old_client.account.list_secrets()
    with pytest.raises(InvalidSecretError):  # the SDK checks the rules before sending
        old_client.account.create_secret("weak")
    created = old_client.account.create_secret("Rotated-s3cret")
    assert [s.id for s in old_client.account.list_secrets()] == [original.id, created.id]
    assert old_client.account.get_secret(created.id) == created

    new_client = sdk_client(server, credentials.api_key, "Rotated-s3cret")
    assert new_client.account.get_balance().value == 0
    new_client.account.revoke_secret(original.id)

    with pytest.raises(AuthenticationError):  # at once: this process dropped its cached check
        old_client.account.get_balance()
    with pytest.raises(ForbiddenError) as last:
        new_client.account.revoke_secret(created.id)
    assert last.value.response.json()["title"] == "Secret Deletion Forbidden"
    with pytest.raises(NotFoundError):
        new_client.account.get_secret(original.id)
    assert [s.id for s in new_client.account.list_secrets()] == [created.id]
    sent = new_client.messages.send(Sms(to="447700900000", from_="Acme", text="rotated"))
    assert sent.message_uuid


def wait_for(check: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_operator_credit_limit_top_up_and_disable_on_a_running_server(server: TidingsServer) -> None:
    credentials = server.create_account()
    server.cli("prices", "set", "--channel", "sms", "--prefix", "44", "--price", "0.0400")
    server.cli("accounts", "set-credit", "--credit-limit", "0.04", credentials.api_key)
    server.start()
    client = sdk_client(server, credentials.api_key, credentials.api_secret)
    message = Sms(to="447700900000", from_="Acme", text="on credit")

    assert client.messages.send(message).message_uuid
    with pytest.raises(HttpRequestError) as refused:
        client.messages.send(message)
    assert refused.value.response.status_code == 402
    assert refused.value.response.json()["title"] == "Low balance"
    assert Decimal(str(client.account.get_balance().value)) == Decimal("-0.04")

    server.cli("accounts", "top-up", credentials.api_key, "1.00")  # read fresh: no cache involved
    assert Decimal(str(client.account.get_balance().value)) == Decimal("0.96")
    assert client.messages.send(message).message_uuid

    server.cli("accounts", "disable", credentials.api_key)

    def refused_now() -> bool:
        try:
            client.account.get_balance()
        except AuthenticationError:
            return True
        return False

    wait_for(refused_now)  # once the server's authentication cache (0.5 s here) has expired
    server.cli("accounts", "enable", credentials.api_key)
    wait_for(lambda: not refused_now())
