"""The Numbers API wire format (numbers.yml): query/form parameters in, `error-code` bodies out.

Parameters arrive as flat strings (query string on GET, form fields on POST); each request model
validates them and converts them to the domain's queries. Unknown parameters, such as the
`api_key`/`api_secret` pair, are ignored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tidings.domain.errors import NumberActionFailed, TidingsError, Unauthorized
from tidings.domain.number import (
    AvailableNumber,
    AvailableNumberQuery,
    Feature,
    NumberPattern,
    NumberType,
    NumberUpdate,
    OwnedNumber,
    OwnedNumberFilter,
    Page,
    SearchPattern,
    VoiceCallbackType,
    parse_features,
)
from tidings.wire.callback_urls import callback_url_problem
from tidings.wire.validation_errors import invalid_parameters

SUCCESS = {"error-code": "200", "error-code-label": "success"}
AUTHENTICATION_FAILED = "authentication failed"


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _valid_country(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("must be a two-letter ISO 3166-1 alpha-2 code")
    return value.upper()


def _valid_msisdn(value: str) -> str:
    digits = value.removeprefix("+")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise ValueError("must be a number in E.164 format")
    return digits


def _web_url(value: str) -> str | None:
    if value == "":
        return None  # an empty string removes the setting
    reason = callback_url_problem(value)
    if reason:
        raise ValueError(reason)
    return value


class _PagedParams(_Params):
    pattern: str | None = None
    search_pattern: SearchPattern = SearchPattern.STARTS_WITH
    size: int = Field(10, ge=1, le=100)
    # Bounded so that the page's offset (index - 1) * size fits the databases' 64-bit integers:
    # an index past the last page answers an empty page, one past this bound a parameter error.
    index: int = Field(1, ge=1, le=10_000_000)

    @field_validator("pattern")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        digits = value.removeprefix("+")
        if not digits.isdigit():
            raise ValueError("must be digits")
        return digits

    def number_pattern(self) -> NumberPattern | None:
        return NumberPattern(self.pattern, self.search_pattern) if self.pattern else None

    def page(self) -> Page:
        return Page(index=self.index, size=self.size)


class OwnedNumbersParams(_PagedParams):
    application_id: str | None = None
    has_application: bool | None = None
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _valid_country(value) if value else None

    def to_filter(self) -> OwnedNumberFilter:
        return OwnedNumberFilter(
            country=self.country,
            application_id=self.application_id or None,
            has_application=self.has_application,
            pattern=self.number_pattern(),
        )


class SearchParams(_PagedParams):
    country: str
    type: NumberType | None = None
    features: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _valid_country(value)

    @field_validator("features")
    @classmethod
    def _features(cls, value: str | None) -> str | None:
        if value:
            parse_features(value)
        return value or None

    def to_query(self) -> AvailableNumberQuery:
        features: tuple[Feature, ...] = parse_features(self.features) if self.features else ()
        return AvailableNumberQuery(
            country=self.country,
            type=self.type,
            features=features,
            pattern=self.number_pattern(),
            page=self.page(),
        )


class _OneNumberParams(_Params):
    country: str
    msisdn: str

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _valid_country(value)

    @field_validator("msisdn")
    @classmethod
    def _msisdn(cls, value: str) -> str:
        return _valid_msisdn(value)


class NumberParams(_OneNumberParams):
    """/number/buy and /number/cancel."""

    target_api_key: str | None = None


class UpdateParams(_OneNumberParams):
    app_id: str | None = None
    mo_http_url: str | None = Field(None, alias="moHttpUrl")
    mo_smpp_sys_type: str | None = Field(None, alias="moSmppSysType")
    voice_callback_type: str | None = Field(None, alias="voiceCallbackType")
    voice_callback_value: str | None = Field(None, alias="voiceCallbackValue")
    voice_status_callback: str | None = Field(None, alias="voiceStatusCallback")
    # Deprecated spelling of app_id: messagesCallbackType=app with the application in the value.
    messages_callback_type: str | None = Field(None, alias="messagesCallbackType")
    messages_callback_value: str | None = Field(None, alias="messagesCallbackValue")

    @field_validator("mo_http_url", "voice_status_callback")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return value if value is None else (_web_url(value) or "")

    @field_validator("voice_callback_type")
    @classmethod
    def _voice_type(cls, value: str | None) -> str | None:
        if value:
            VoiceCallbackType(value)
        return value

    @field_validator("messages_callback_type")
    @classmethod
    def _messages_type(cls, value: str | None) -> str | None:
        if value and value != "app":
            raise ValueError("must be `app`")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> UpdateParams:
        if bool(self.voice_callback_type) != bool(self.voice_callback_value):
            raise ValueError("voiceCallbackType and voiceCallbackValue go together")
        if bool(self.messages_callback_type) != bool(self.messages_callback_value):
            raise ValueError("messagesCallbackType and messagesCallbackValue go together")
        return self

    def to_update(self) -> NumberUpdate:
        """Only what the request names changes; an empty value clears the setting."""
        changes: dict[str, str | None] = {}
        app_id = self.app_id if self.app_id is not None else self.messages_callback_value
        if app_id is not None:
            changes["app_id"] = app_id or None
        if self.mo_http_url is not None:
            changes["mo_http_url"] = self.mo_http_url or None
        if self.voice_callback_type is not None:
            changes["voice_callback_type"] = self.voice_callback_type or None
            changes["voice_callback_value"] = self.voice_callback_value or None
        if self.voice_status_callback is not None:
            changes["voice_status_callback"] = self.voice_status_callback or None
        return NumberUpdate(country=self.country, msisdn=self.msisdn, changes=changes)


M = TypeVar("M", bound=_Params)


def parse_params(model: type[M], params: Mapping[str, str]) -> M:
    try:
        return model.model_validate(dict(params))
    except ValidationError as error:
        problems = "; ".join(
            (p.reason if p.name == "body" else f"{p.name} {p.reason}").rstrip(".")
            for p in invalid_parameters(error)
        )
        raise NumberActionFailed(f"invalid parameters: {problems}") from None


def owned_number_body(number: OwnedNumber) -> dict[str, Any]:
    body: dict[str, Any] = {"country": number.country, "msisdn": number.msisdn}
    if number.mo_http_url:
        body["moHttpUrl"] = number.mo_http_url
    body["type"] = number.type.value
    body["features"] = [feature.value for feature in number.features]
    if number.app_id:
        body["messagesCallbackType"] = "app"
        body["messagesCallbackValue"] = number.app_id
    if number.voice_callback_type:
        body["voiceCallbackType"] = number.voice_callback_type.value
        body["voiceCallbackValue"] = number.voice_callback_value
    if number.app_id:
        body["app_id"] = number.app_id
    return body


def available_number_body(number: AvailableNumber) -> dict[str, Any]:
    return {
        "country": number.country,
        "msisdn": number.msisdn,
        "type": number.type.value,
        "cost": format(number.cost, "f"),
        "features": [feature.value for feature in number.features],
    }


def numbers_page(count: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    """As Vonage answers: `numbers` is left out when the page is empty."""
    body: dict[str, Any] = {"count": count}
    if items:
        body["numbers"] = items
    return body


def failure_body(error: TidingsError) -> tuple[int, dict[str, str]]:
    """Any error of a Numbers API call in that API's shape: 401 or 420 with `error-code`."""
    if isinstance(error, Unauthorized):
        return 401, {"error-code": "401", "error-code-label": AUTHENTICATION_FAILED}
    if isinstance(error, NumberActionFailed):
        return 420, {"error-code": "420", "error-code-label": error.detail}
    return error.status, {"error-code": str(error.status), "error-code-label": error.detail}
