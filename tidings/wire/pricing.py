"""Pricing API wire formats (`/account/get-pricing`, `get-full-pricing`, `get-prefix-pricing`).

Shapes follow Vonage's published Pricing API (v0.0.3) and what the SDK's `vonage_account` models
read: prices as strings with eight decimals, `count` as a number, errors in that API's own
shapes (400 `BAD_REQUEST` with one invalid parameter; 401 with `code`, `currency`, label).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.errors import InvalidPricingQuery, TidingsError, Unauthorized
from tidings.domain.message import Channel
from tidings.services.price_catalogue import CountryPrice, NetworkPrice

# Vonage's service types (`sms`, `sms-transit`, `voice`) on Tidings' price channels. Transit SMS is
# priced as SMS; Tidings carries no voice. The other channels are priced by their own names.
_CHANNEL_OF_TYPE = {"sms": Channel.SMS.value, "sms-transit": Channel.SMS.value} | {
    channel.value: channel.value for channel in Channel
}


def channel_for_type(service_type: str) -> str:
    channel = _CHANNEL_OF_TYPE.get(service_type)
    if channel is None:
        raise InvalidPricingQuery("type", "Is invalid")
    return channel


def parse_country(value: str | None) -> str:
    if not value:
        raise InvalidPricingQuery("country", "Is required")
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise InvalidPricingQuery("country", "Is invalid")
    return value.upper()


def parse_prefix(value: str | None) -> str:
    if not value:
        raise InvalidPricingQuery("prefix", "Is required")
    digits = value.removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 15:
        raise InvalidPricingQuery("prefix", "Is invalid")
    return digits


class NetworkObject(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    type: str | None = None
    price: str
    currency: str
    network_name: str | None = Field(None, alias="networkName")
    ranges: list[int] = Field(description="The number prefixes this price applies to")


class CountryObject(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    country_code: str = Field(alias="countryCode")
    country_name: str = Field(alias="countryName")
    country_display_name: str = Field(alias="countryDisplayName")
    currency: str
    default_price: str = Field(alias="defaultPrice")
    dialing_prefix: str = Field(alias="dialingPrefix")
    networks: list[NetworkObject]


class PricingCountriesResponse(BaseModel):
    count: int
    countries: list[CountryObject]


def render_price(price: Decimal) -> str:
    return f"{price:.8f}"


def _render_network(network: NetworkPrice) -> dict[str, Any]:
    body: dict[str, Any] = {"price": render_price(network.price), "currency": network.currency}
    if network.network_name:
        body["networkName"] = network.network_name
    body["ranges"] = [int(network.prefix)]
    return body


def render_country(country: CountryPrice) -> dict[str, Any]:
    return {
        "countryCode": country.country_code,
        "countryName": country.country_name,
        "countryDisplayName": country.country_name,
        "currency": country.currency,
        "defaultPrice": render_price(country.default_price),
        "dialingPrefix": country.dialing_prefix,
        "networks": [_render_network(network) for network in country.networks],
    }


def render_countries(countries: Sequence[CountryPrice]) -> dict[str, Any]:
    return {"count": len(countries), "countries": [render_country(c) for c in countries]}


def render_pricing_error(error: TidingsError, currency: str) -> dict[str, Any]:
    if isinstance(error, InvalidPricingQuery):
        return {
            "type": "BAD_REQUEST",
            "error_title": "Bad Request",
            "invalid_parameters": {"parameter": error.parameter, "message": error.reason},
        }
    label = "authentication failed" if isinstance(error, Unauthorized) else error.detail
    return {"code": str(error.status), "currency": currency, "error-code-label": label}
