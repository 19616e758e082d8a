"""The Account API: balance, top-up and settings (shared/specs/account.yml), outbound pricing, and
(in account_secrets.py) secret management.

These calls live on Vonage's `rest` host: the SDK authenticates them with Basic, the spec with
`api_key` and `api_secret` query (or form) parameters; both are taken. Their errors keep that
host's older JSON shapes, not RFC 7807, so each router renders its own (see `_rendering`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from tidings.api import account_secrets
from tidings.api.dependencies import get_runtime
from tidings.api.problems import retry_after_header
from tidings.api.rest_params import request_params, rest_caller
from tidings.domain.account import Account
from tidings.domain.errors import InvalidPricingQuery, TidingsError, Unauthorized
from tidings.services import account_settings
from tidings.services.account_settings import UnknownAccount
from tidings.services.price_catalogue import PriceCatalogue
from tidings.services.pricing import Pricing
from tidings.wire.account import (
    TOP_UP_SUCCESS,
    AccountBalance,
    AccountSettings,
    StatusResponse,
    parse_settings_request,
    render_balance,
    render_settings,
    render_status_error,
)
from tidings.wire.pricing import (
    CountryObject,
    PricingCountriesResponse,
    channel_for_type,
    parse_country,
    parse_prefix,
    render_countries,
    render_country,
    render_pricing_error,
)

Renderer = Callable[[Request, TidingsError], dict[str, Any]]
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Tidings"'}


def _rendering(render: Renderer) -> type[APIRoute]:
    """A route class answering Tidings errors in `render`'s shape instead of RFC 7807."""

    class ShapedErrorsRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except TidingsError as error:
                    headers = _CHALLENGE if isinstance(error, Unauthorized) else retry_after_header(error)
                    return JSONResponse(render(request, error), status_code=error.status, headers=headers)

            return route

    return ShapedErrorsRoute


def _pricing_error(request: Request, error: TidingsError) -> dict[str, Any]:
    return render_pricing_error(error, get_runtime(request).settings.default_currency)


status_router = APIRouter(
    prefix="/account", tags=["Account"], route_class=_rendering(lambda _r, e: render_status_error(e))
)
pricing_router = APIRouter(prefix="/account", tags=["Pricing"], route_class=_rendering(_pricing_error))


async def request_fields(request: Request) -> dict[str, str]:
    return await request_params(request)


Fields = Annotated[dict[str, str], Depends(request_fields)]


async def rest_account(
    request: Request,
    fields: Fields,
    api_key: Annotated[str | None, Query(description="Instead of HTTP Basic: your API key")] = None,
    api_secret: Annotated[str | None, Query(description="Instead of HTTP Basic: your API secret")] = None,
) -> Account:
    """The declared query parameters document the call; `fields` also holds the form's."""
    return await rest_caller(request, fields)


Caller = Annotated[Account, Depends(rest_account)]

_FORM = "application/x-www-form-urlencoded"
_STATUS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": StatusResponse, "description": "Wrong credentials, or (top-up) auto-reload not enabled"},
    400: {"model": StatusResponse, "description": "Invalid parameter"},
}


def _form_body(properties: dict[str, str], required: list[str]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in properties.items()},
    }
    if required:
        schema["required"] = required
    return {"requestBody": {"required": bool(required), "content": {_FORM: {"schema": schema}}}}


@status_router.get(
    "/get-balance",
    response_model=AccountBalance,
    responses=_STATUS_ERRORS,
    summary="Get Account Balance",
    operation_id="getAccountBalance",
)
async def get_balance(request: Request, caller: Caller) -> JSONResponse:
    try:
        balance = await account_settings.get_balance(get_runtime(request).database, caller.api_key)
    except UnknownAccount:
        raise Unauthorized() from None
    return JSONResponse(render_balance(balance))


@status_router.post(
    "/top-up",
    response_model=StatusResponse,
    responses=_STATUS_ERRORS,
    summary="Top Up Account Balance",
    operation_id="topUpAccountBalance",
    openapi_extra=_form_body({"trx": "The transaction reference of the auto-reload payment"}, ["trx"]),
)
async def top_up(request: Request, caller: Caller, fields: Fields) -> JSONResponse:
    try:
        await account_settings.request_top_up(
            get_runtime(request).database, caller.api_key, fields.get("trx")
        )
    except UnknownAccount:
        raise Unauthorized() from None
    return JSONResponse(TOP_UP_SUCCESS)


@status_router.post(
    "/settings",
    response_model=AccountSettings,
    responses=_STATUS_ERRORS,
    summary="Change Account Settings",
    operation_id="changeAccountSettings",
    openapi_extra=_form_body(
        {
            "moCallBackUrl": "Default inbound SMS webhook URL; empty to unset",
            "drCallBackUrl": "Default delivery receipt webhook URL; empty to unset",
        },
        [],
    ),
)
async def change_settings(request: Request, caller: Caller, fields: Fields) -> JSONResponse:
    changes = parse_settings_request(fields)
    runtime = get_runtime(request)
    try:
        settings = await account_settings.update_callbacks(runtime.database, caller.api_key, changes)
    except UnknownAccount:
        raise Unauthorized() from None
    return JSONResponse(render_settings(settings, runtime.send_limits.reported_per_second(caller)))


# --- pricing ------------------------------------------------------------------------------

ServiceType = Annotated[str, Path(alias="type", description="sms, sms-transit, or a Tidings channel")]
_PRICING_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Missing or invalid type, country or prefix"},
    401: {"description": "Wrong credentials"},
}


# One catalogue per price source, so that its per-price-list work is shared between requests.
_catalogues: weakref.WeakKeyDictionary[Pricing, PriceCatalogue] = weakref.WeakKeyDictionary()


def _catalogue(request: Request) -> PriceCatalogue:
    pricing = get_runtime(request).pricing
    catalogue = _catalogues.get(pricing)
    if catalogue is None:
        catalogue = _catalogues[pricing] = PriceCatalogue(pricing)
    return catalogue


@pricing_router.get(
    "/get-pricing/outbound/{type}",
    response_model=CountryObject,
    responses=_PRICING_ERRORS,
    summary="Retrieve outbound pricing for a specific country",
    operation_id="retrievePricingCountry",
)
async def country_pricing(
    request: Request,
    _caller: Caller,
    service_type: ServiceType,
    country: Annotated[str | None, Query(description="Two-letter country code, e.g. GB")] = None,
) -> JSONResponse:
    channel = channel_for_type(service_type)
    found = _catalogue(request).country(channel, parse_country(country))
    if found is None:
        raise InvalidPricingQuery("country", "Is invalid")
    return JSONResponse(render_country(found))


@pricing_router.get(
    "/get-full-pricing/outbound/{type}",
    response_model=PricingCountriesResponse,
    responses=_PRICING_ERRORS,
    summary="Retrieve outbound pricing for all countries",
    operation_id="retrievePricingAllCountries",
)
async def full_pricing(request: Request, _caller: Caller, service_type: ServiceType) -> JSONResponse:
    return JSONResponse(render_countries(_catalogue(request).all_countries(channel_for_type(service_type))))


@pricing_router.get(
    "/get-prefix-pricing/outbound/{type}",
    response_model=PricingCountriesResponse,
    responses=_PRICING_ERRORS,
    summary="Retrieve outbound pricing for a dialling prefix",
    operation_id="retrievePrefixPricing",
)
async def prefix_pricing(
    request: Request,
    _caller: Caller,
    service_type: ServiceType,
    prefix: Annotated[str | None, Query(description="Dialling prefix, e.g. 44 or 1")] = None,
) -> JSONResponse:
    channel = channel_for_type(service_type)
    return JSONResponse(render_countries(_catalogue(request).by_prefix(channel, parse_prefix(prefix))))


router = APIRouter()
router.include_router(status_router)
router.include_router(pricing_router)
router.include_router(account_secrets.router)
