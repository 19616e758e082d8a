"""The older rest-host APIs (Numbers, Account): parameters from the query and a form (or JSON)
body, and credentials given either as Basic auth or as `api_key`/`api_secret` parameters."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from tidings import strict_json
from tidings.api.access_log import remember_account
from tidings.api.dependencies import client_address, get_runtime
from tidings.domain.account import Account


async def request_params(request: Request) -> dict[str, str]:
    """Query parameters, overlaid by the members of a POST's form or JSON body."""
    params = dict(request.query_params)
    if request.method != "POST":
        return params
    raw = await request.body()
    if not raw:
        return params
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        # A body labelled JSON that is not JSON is read as a form: the Vonage Python SDK, once its
        # shared client has sent JSON, labels its later form bodies `application/json` too. A
        # JSON body that is not an object adds nothing; what it lacks is reported as missing.
        try:
            body = strict_json.loads(raw)
        except (ValueError, RecursionError):  # decode errors, and integers past the int-string limit
            body = _form(raw)
        if isinstance(body, dict):
            params.update({str(k): _flat(v) for k, v in body.items() if v is not None})
        return params
    params.update(_form(raw))
    return params


async def rest_caller(request: Request, params: dict[str, str]) -> Account:
    """Basic auth, or the same credentials as parameters, checked the same way."""
    authorization = request.headers.get("authorization")
    api_key, api_secret = params.get("api_key", ""), params.get("api_secret", "")
    if not (authorization or "").lower().startswith("basic ") and api_key and api_secret:
        authorization = "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
    account = await get_runtime(request).authenticator.authenticate(authorization, client_address(request))
    remember_account(request.scope, account.api_key)
    return account


def _form(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


def _flat(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
