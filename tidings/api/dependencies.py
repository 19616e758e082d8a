"""What routes ask for: the runtime, the authenticated account, a JSON body."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from tidings import strict_json
from tidings.api.access_log import remember_account
from tidings.domain.account import Account
from tidings.domain.errors import InvalidJson, UnsupportedContentType
from tidings.domain.principal import Principal
from tidings.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_address(request: Request) -> str | None:
    """The peer's address (uvicorn's proxy-header handling, when enabled, puts the client's here).
    Read from the scope: `request.client` builds a named tuple on every access, on the send path."""
    client = request.scope.get("client")
    return client[0] if client else None


async def basic_account(request: Request) -> Account:
    """For the endpoints Vonage serves with Basic auth (API key and secret) only."""
    authorization = request.headers.get("authorization")
    account = await get_runtime(request).authenticator.authenticate(authorization, client_address(request))
    remember_account(request.scope, account.api_key)
    return account


async def principal(request: Request) -> Principal:
    """Basic auth (account level) or a Bearer JWT (application level), as the Messages API takes both."""
    runtime = get_runtime(request)
    authorization = request.headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        basic = await runtime.authenticator.authenticate(authorization, client_address(request))
        remember_account(request.scope, basic.api_key)
        return Principal(account=basic)
    path = request.scope.get("root_path", "") + request.scope["path"]  # request.url is built lazily and costs
    caller = await runtime.jwt_authenticator.authenticate(token.strip(), path, client_address(request))
    remember_account(request.scope, caller.account.api_key)
    return caller


async def json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedContentType()
    raw = await request.body()
    try:
        return strict_json.loads(raw)
    except (strict_json.NotStrictJson, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidJson(str(error)) from None
    except ValueError:
        # An integer longer than Python's int-to-string limit (4,300 digits) fails as a plain ValueError.
        raise InvalidJson("A number in the body has too many digits.") from None
