"""The Numbers API (numbers.yml): list, search, buy, cancel and update virtual numbers.

Authentication is the account's API key and secret, either as `api_key`/`api_secret` parameters
(query or form, as the spec describes) or as HTTP Basic (as the official SDKs send them). Every
answer, failures included, is in that API's own `error-code` shape rather than RFC 7807.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tidings.api.dependencies import get_runtime
from tidings.api.problems import retry_after_header
from tidings.api.rest_params import request_params, rest_caller
from tidings.domain.account import Account
from tidings.domain.errors import NumberActionFailed, TidingsError
from tidings.services.numbers import METHOD_FAILED, NumbersService
from tidings.wire.numbers import (
    SUCCESS,
    NumberParams,
    OwnedNumbersParams,
    SearchParams,
    UpdateParams,
    available_number_body,
    failure_body,
    numbers_page,
    owned_number_body,
    parse_params,
)

router = APIRouter(tags=["Numbers"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": '`{"error-code": "401", "error-code-label": "authentication failed"}`'},
    420: {"description": 'Action failed: `{"error-code": "420", "error-code-label": "method failed"}`'},
}

Work = Callable[[Account, dict[str, str]], Awaitable[dict[str, Any]]]

_CREDENTIALS = {
    "api_key": {"type": "string", "description": "Instead of HTTP Basic: your API key"},
    "api_secret": {"type": "string", "description": "Instead of HTTP Basic: your API secret"},
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A pydantic JSON schema with its `$defs` references replaced by what they name."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _documented(model: type[BaseModel], *, form: bool) -> dict[str, Any]:
    """OpenAPI for parameters the route reads itself: query parameters, or a form body."""
    schema = model.model_json_schema(by_alias=True)
    properties = _inline(schema["properties"], schema.get("$defs", {})) | _CREDENTIALS
    required = list(schema.get("required", []))
    if form:
        body = {"type": "object", "properties": properties, "required": required}
        content = {"application/x-www-form-urlencoded": {"schema": body}}
        return {"requestBody": {"required": True, "content": content}}
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in required, "schema": value}
            for name, value in properties.items()
        ]
    }


async def _answer(request: Request, work: Work) -> JSONResponse:
    try:
        params = await request_params(request)
        account = await rest_caller(request, params)
        body = await work(account, params)
    except TidingsError as error:
        status, failure = failure_body(error)
        return JSONResponse(failure, status_code=status, headers=retry_after_header(error))
    return JSONResponse(body)


def _service(request: Request) -> NumbersService:
    return NumbersService(get_runtime(request).database)


def _no_subaccounts(account: Account, target_api_key: str | None) -> None:
    if target_api_key and target_api_key != account.api_key:
        raise NumberActionFailed(f"{METHOD_FAILED}: target_api_key is not a subaccount of this account")


@router.get(
    "/account/numbers",
    responses=_RESPONSES,
    summary="List the numbers you own",
    openapi_extra=_documented(OwnedNumbersParams, form=False),
)
async def list_owned_numbers(request: Request) -> JSONResponse:
    async def work(account: Account, params: dict[str, str]) -> dict[str, Any]:
        parsed = parse_params(OwnedNumbersParams, params)
        found, count = await _service(request).list_owned(account.api_key, parsed.to_filter(), parsed.page())
        return numbers_page(count, [owned_number_body(number) for number in found])

    return await _answer(request, work)


@router.get(
    "/number/search",
    responses=_RESPONSES,
    summary="Search available numbers",
    openapi_extra=_documented(SearchParams, form=False),
)
async def search_available_numbers(request: Request) -> JSONResponse:
    async def work(_account: Account, params: dict[str, str]) -> dict[str, Any]:
        found, count = await _service(request).search(parse_params(SearchParams, params).to_query())
        return numbers_page(count, [available_number_body(number) for number in found])

    return await _answer(request, work)


@router.post(
    "/number/buy",
    responses=_RESPONSES,
    summary="Buy a number",
    openapi_extra=_documented(NumberParams, form=True),
)
async def buy_number(request: Request) -> JSONResponse:
    async def work(account: Account, params: dict[str, str]) -> dict[str, Any]:
        parsed = parse_params(NumberParams, params)
        _no_subaccounts(account, parsed.target_api_key)
        await _service(request).buy(account.api_key, parsed.country, parsed.msisdn, now=datetime.now(UTC))
        return SUCCESS

    return await _answer(request, work)


@router.post(
    "/number/cancel",
    responses=_RESPONSES,
    summary="Cancel a number",
    openapi_extra=_documented(NumberParams, form=True),
)
async def cancel_number(request: Request) -> JSONResponse:
    async def work(account: Account, params: dict[str, str]) -> dict[str, Any]:
        parsed = parse_params(NumberParams, params)
        _no_subaccounts(account, parsed.target_api_key)
        await _service(request).cancel(account.api_key, parsed.country, parsed.msisdn)
        return SUCCESS

    return await _answer(request, work)


@router.post(
    "/number/update",
    responses=_RESPONSES,
    summary="Update a number",
    openapi_extra=_documented(UpdateParams, form=True),
)
async def update_number(request: Request) -> JSONResponse:
    async def work(account: Account, params: dict[str, str]) -> dict[str, Any]:
        await _service(request).update(account.api_key, parse_params(UpdateParams, params).to_update())
        return SUCCESS

    return await _answer(request, work)
