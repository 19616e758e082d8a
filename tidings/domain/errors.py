"""Every error Tidings reports to an API client, with the HTTP status, type URL and title Vonage uses.

One class per documented error; the API layer renders any of them as RFC 7807 (type, title, detail,
instance, plus extra members such as invalid_parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERRORS_BASE = "https://developer.vonage.com/api-errors"


@dataclass(frozen=True)
class InvalidParameter:
    name: str
    reason: str


class TidingsError(Exception):
    status: int = 500
    type_url: str = f"{ERRORS_BASE}/messages#1000"
    title: str = "Internal error"
    default_detail: str = "There was an error processing your request in the Platform."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def extra(self) -> dict[str, Any]:
        """Members added to the RFC 7807 body beyond type/title/detail/instance."""
        return {}


class Unauthorized(TidingsError):
    status = 401
    type_url = f"{ERRORS_BASE}#unauthorized"
    title = "Unauthorized"
    default_detail = "You did not provide correct credentials."


class Forbidden(TidingsError):
    status = 403
    type_url = f"{ERRORS_BASE}#forbidden"
    title = "Forbidden"
    default_detail = "Your account does not have permission to perform this action."


class LowBalance(TidingsError):
    status = 402
    type_url = f"{ERRORS_BASE}/#low-balance"
    title = "Low balance"
    default_detail = "This request could not be performed due to your account balance being low."


class NotFound(TidingsError):
    status = 404
    type_url = f"{ERRORS_BASE}#not-found"
    title = "Not Found"
    default_detail = "The requested resource does not exist, or you do not have access to it."


class WrongVerb(TidingsError):
    status = 405
    type_url = f"{ERRORS_BASE}#wrong-verb"
    title = "Request method not allowed"


class InvalidAcceptHeader(TidingsError):
    status = 406
    type_url = f"{ERRORS_BASE}#accept-header"
    title = "Invalid Accept header"
    default_detail = "Invalid Accept header provided. Must be one of the following: 'application/json'"


class PayloadTooLarge(TidingsError):
    status = 413
    type_url = f"{ERRORS_BASE}#payload-too-large"
    title = "Payload too large"
    default_detail = "The request body is larger than this endpoint accepts."


class UnsupportedContentType(TidingsError):
    status = 415
    type_url = f"{ERRORS_BASE}#content-type-header"
    title = "Unsupported Content-Type header"
    default_detail = (
        "Unsupported Content-Type header provided. Must be one of the following: 'application/json'"
    )


class InvalidJson(TidingsError):
    status = 422
    type_url = f"{ERRORS_BASE}#invalid-json"
    title = "The request body did not contain valid JSON"


class UnsupportedChannel(TidingsError):
    status = 422
    type_url = f"{ERRORS_BASE}/messages#1100"
    title = "Unsupported channel"
    default_detail = "The specified channel is not supported."


class InvalidSender(TidingsError):
    status = 422
    type_url = f"{ERRORS_BASE}/messages#1120"
    title = "Invalid sender"
    default_detail = "The `from` parameter is invalid for the given channel."


class InvalidMessageType(TidingsError):
    status = 422
    type_url = f"{ERRORS_BASE}/messages#1140"
    title = "Invalid message type"
    default_detail = "The message type specified in the request is not supported for the given channel."


class InvalidParams(TidingsError):
    status = 422
    type_url = f"{ERRORS_BASE}/messages#1150"
    title = "Invalid params"
    default_detail = "The value of one or more parameters is invalid."

    def __init__(self, invalid_parameters: list[InvalidParameter], detail: str | None = None) -> None:
        super().__init__(detail)
        self.invalid_parameters = invalid_parameters

    def extra(self) -> dict[str, Any]:
        return {"invalid_parameters": [{"name": p.name, "reason": p.reason} for p in self.invalid_parameters]}


class InvalidApplicationPayload(InvalidParams):
    """Application API v2 answers a bad create/update body with 400, not the Messages API's 422."""

    status = 400
    type_url = f"{ERRORS_BASE}/application#payload-validation"
    title = "Bad Request"
    default_detail = "The request failed due to validation errors"


class InvalidApplicationListQuery(InvalidParams):
    status = 400
    type_url = f"{ERRORS_BASE}/application#list-validation"
    title = "Bad Request"
    default_detail = "The request failed due to validation errors"


class Throttled(TidingsError):
    status = 429
    type_url = f"{ERRORS_BASE}#throttled"
    title = "Too many requests"
    default_detail = "Your account has reached its API limit and has been throttled."

    def __init__(self, retry_after: int = 1, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class RateLimitHit(Throttled):
    """The Messages API's own 429 (shared/specs/messages.yml, `ErrorThrottled`): a send past the
    account's or the application's rate. `retry_after` as the shared Throttled error has it."""

    type_url = f"{ERRORS_BASE}/messages#1010"
    title = "Rate Limit Hit"
    default_detail = "Please wait, then retry your request"


class NumberActionFailed(TidingsError):
    """The Numbers API's one failure besides 401: HTTP 420 `method failed` (a number that is not
    available or not yours, a bad parameter). Rendered in that API's own shape, not RFC 7807."""

    status = 420
    type_url = f"{ERRORS_BASE}/numbers#method-failed"
    title = "Action failed"
    default_detail = "method failed"


class UnroutableInbound(TidingsError):
    """An inbound message for a number nobody routes: kept in `unroutable_inbound`, not delivered."""

    status = 404
    type_url = f"{ERRORS_BASE}#not-found"
    title = "Unroutable inbound message"
    default_detail = "No number of this account matches `to`; the message was recorded as unroutable."

    def __init__(self, unroutable_id: str, detail: str | None = None) -> None:
        super().__init__(detail)
        self.unroutable_id = unroutable_id

    def extra(self) -> dict[str, Any]:
        return {"unroutable_id": self.unroutable_id}


# --- Account API (shared/specs/account.yml) and Pricing API -------------------------------------


class AutoReloadNotEnabled(TidingsError):
    """Top-up asked of an account without auto-reload (the spec answers 401, not 403)."""

    status = 401
    type_url = f"{ERRORS_BASE}/account#top-up"
    title = "not auto-reload enabled"
    default_detail = "not auto-reload enabled"


class InvalidAccountRequest(TidingsError):
    """A parameter of the balance, top-up or settings calls was missing or wrong."""

    status = 400
    type_url = f"{ERRORS_BASE}/account#validation"
    title = "Bad Request"

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter} {reason}")
        self.parameter = parameter
        self.reason = reason

    def extra(self) -> dict[str, Any]:
        return {"invalid_parameters": [{"name": self.parameter, "reason": self.reason}]}


class InvalidPricingQuery(InvalidAccountRequest):
    """A pricing call's `type`, `country` or `prefix` was missing or not understood."""


class SecretValidationFailed(TidingsError):
    status = 400
    type_url = f"{ERRORS_BASE}/account/secret-management#validation"
    title = "Bad Request"
    default_detail = "The request failed due to secret validation errors"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason

    def extra(self) -> dict[str, Any]:
        return {"invalid_parameters": [{"name": "secret", "reason": self.reason}]}


class LastSecretDeletion(TidingsError):
    status = 403
    type_url = f"{ERRORS_BASE}/account/secret-management#delete-last-secret"
    title = "Secret Deletion Forbidden"
    default_detail = (
        "Can not delete the last secret. The account must always have at least 1 secret active at any time"
    )


class ApiKeyNotFound(TidingsError):
    """Also the answer for another account's key: whether that account exists is not revealed."""

    status = 404
    type_url = f"{ERRORS_BASE}#invalid-api-key"
    title = "Invalid API Key"

    def __init__(self, api_key: str) -> None:
        super().__init__(f"API key '{api_key}' not found")


class SecretIdNotFound(TidingsError):
    status = 404
    type_url = f"{ERRORS_BASE}#invalid-id"
    title = "Invalid ID"

    def __init__(self, secret_id: str) -> None:
        super().__init__(f"ID '{secret_id}' could not be found")


class ProviderUnreachable(TidingsError):
    """The provider could not be reached to carry out a request now; the client may try again.
    Vonage documents no type for this, hence RFC 7807's `about:blank`."""

    status = 503
    type_url = "about:blank"
    title = "Service Unavailable"
    default_detail = "The provider could not be reached; try again later."


class ServiceUnavailable(TidingsError):
    """Something Tidings needs (its database) cannot be reached right now; the request may be sent
    again. Vonage documents no type for this."""

    status = 503
    type_url = "about:blank"
    title = "Service Unavailable"
    default_detail = "Tidings cannot reach its database right now; try again shortly."
