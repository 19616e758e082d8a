"""Account API wire formats (shared/specs/account.yml): balance, top-up, settings, secrets.

Balance, top-up and settings live on Vonage's `rest` host and answer errors in its older shape,
`{"error-code": "401", "error-code-label": "authentication failed"}`; the secrets endpoints answer
RFC 7807 problems like the rest of Tidings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.account_settings import ApiSecret, Balance, CallbackSettings
from tidings.domain.errors import InvalidAccountRequest, SecretValidationFailed, TidingsError, Unauthorized
from tidings.services.account_settings import (
    MAX_CALLS_PER_SECOND,
    MAX_INBOUND_REQUESTS,
    CallbackChanges,
)
from tidings.wire.callback_urls import callback_url_problem

# The spec spells the fields moCallBackUrl/drCallBackUrl; the SDK sends moCallbackUrl/drCallbackUrl.
_MO_FIELDS = ("moCallBackUrl", "moCallbackUrl")
_DR_FIELDS = ("drCallBackUrl", "drCallbackUrl")


# --- requests -----------------------------------------------------------------------------


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; blank values are kept (they clear settings)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidAccountRequest("body", "must be UTF-8 form data.") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _first(fields: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((fields[name] for name in names if name in fields), None)


def callback_url(name: str, value: str) -> str:
    """ "" (clear) or an absolute http(s) URL with a host."""
    reason = callback_url_problem(value) if value else None
    if reason:
        raise InvalidAccountRequest(name, reason)
    return value


def parse_settings_request(fields: Mapping[str, str]) -> CallbackChanges:
    mo = _first(fields, _MO_FIELDS)
    dr = _first(fields, _DR_FIELDS)
    return CallbackChanges(
        mo_callback_url=None if mo is None else callback_url("moCallBackUrl", mo.strip()),
        dr_callback_url=None if dr is None else callback_url("drCallBackUrl", dr.strip()),
    )


def parse_create_secret(body: Any) -> str:
    if not isinstance(body, dict) or "secret" not in body:
        raise SecretValidationFailed("is required.")
    secret = body["secret"]
    if not isinstance(secret, str):
        raise SecretValidationFailed("must be a string.")
    return secret


# --- responses ----------------------------------------------------------------------------


class AccountBalance(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    value: float = Field(description="The balance of the account, in the account's currency")
    auto_reload: bool = Field(alias="autoReload")


class AccountSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    mo_callback_url: str = Field(alias="mo-callback-url")
    dr_callback_url: str = Field(alias="dr-callback-url")
    max_outbound_request: int = Field(alias="max-outbound-request")
    max_inbound_request: int = Field(alias="max-inbound-request")
    max_calls_per_second: int = Field(alias="max-calls-per-second")


class StatusResponse(BaseModel):
    """Top-up's answer, and the shape of every error on the balance/top-up/settings calls."""

    model_config = ConfigDict(populate_by_name=True)
    error_code: str = Field(alias="error-code")
    error_code_label: str = Field(alias="error-code-label")


class Link(BaseModel):
    href: str


class SecretLinks(BaseModel):
    self: Link


class SecretInfo(BaseModel):
    links: SecretLinks = Field(alias="_links")
    id: str
    created_at: str


class SecretList(BaseModel):
    links: SecretLinks = Field(alias="_links")
    embedded: dict[str, list[SecretInfo]] = Field(alias="_embedded")


def render_balance(balance: Balance) -> dict[str, Any]:
    # A JSON number, as the spec shows it; Decimal(str(x)) of the float gives the Decimal back.
    return {"value": float(balance.value), "autoReload": balance.auto_reload}


def render_settings(settings: CallbackSettings, outbound_per_second: int) -> dict[str, Any]:
    return {
        "mo-callback-url": settings.mo_callback_url or "",
        "dr-callback-url": settings.dr_callback_url or "",
        "max-outbound-request": outbound_per_second,
        "max-inbound-request": MAX_INBOUND_REQUESTS,
        "max-calls-per-second": MAX_CALLS_PER_SECOND,
    }


TOP_UP_SUCCESS = {"error-code": "200", "error-code-label": "success"}


def render_status_error(error: TidingsError) -> dict[str, str]:
    label = "authentication failed" if isinstance(error, Unauthorized) else error.detail
    return {"error-code": str(error.status), "error-code-label": label}


def secrets_path(api_key: str) -> str:
    return f"/accounts/{api_key}/secrets"


def render_secret(secret: ApiSecret) -> dict[str, Any]:
    return {
        "_links": {"self": {"href": f"{secrets_path(secret.account_id)}/{secret.id}"}},
        "id": secret.id,
        "created_at": secret.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def render_secret_list(api_key: str, secrets: Sequence[ApiSecret]) -> dict[str, Any]:
    return {
        "_links": {"self": {"href": secrets_path(api_key)}},
        "_embedded": {"secrets": [render_secret(secret) for secret in secrets]},
    }
