"""Every error leaves as RFC 7807 JSON in Vonage's shape: type, title, detail, instance."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from tidings.domain.errors import (
    InvalidParameter,
    InvalidParams,
    NotFound,
    ServiceUnavailable,
    TidingsError,
    Unauthorized,
    WrongVerb,
)
from tidings.store.outage import CommitInDoubt, database_unavailable
from tidings.wire.responses import ProblemDetails, ThrottledProblem

log = logging.getLogger("tidings.api")

PROBLEM_JSON = "application/problem+json"
# nginx's status for a request whose client closed the connection before the answer: never sent,
# it shows in the access line.
CLIENT_CLOSED_REQUEST = 499
_REPORTED = "_tidings_reported"
# While the database is down every request says so; one line per this many seconds is enough.
OUTAGE_LOG_EVERY_SECONDS = 10.0
# What a client is told to wait before sending again while the database is out of reach.
OUTAGE_RETRY_AFTER_SECONDS = 1
# A request whose COMMIT answer was lost may have been written: sent again blindly, it could be
# written twice, so the 503 says so and names the way to send it again safely.
IN_DOUBT_DETAIL = (
    "Tidings lost its database connection while storing this request, which may or may not have "
    "taken effect; send it again with the same Idempotency-Key, which is never accepted twice."
)
# The errors a database outage raises (classified by store/outage.py). They get handlers of their
# own: Starlette's catch-all (`Exception`) answers and then raises again, as a crash of the server.
_OUTAGE_TYPES: tuple[type[Exception], ...] = (
    OSError,
    DBAPIError,
    PoolTimeout,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
_last_outage_log = 0.0


def documented_problems(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for errors, documented as they are sent: RFC 7807 bodies in its own media type."""
    schema, throttled = ProblemDetails.model_json_schema(), ThrottledProblem.model_json_schema()
    return {
        status: {
            "description": text,
            "content": {PROBLEM_JSON: {"schema": throttled if status == 429 else schema}},
        }
        for status, text in descriptions.items()
    }


def problem_body(error: TidingsError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.type_url,
        "title": error.title,
        "detail": error.detail,
        "instance": instance or uuid.uuid4().hex,
    }
    body.update(error.extra())
    return body


def retry_after_header(error: TidingsError) -> dict[str, str]:
    """A 429 says when to come back in its header too, which clients and proxies read."""
    if error.status == 429 and "retry_after" in error.extra():
        return {"Retry-After": str(error.extra()["retry_after"])}
    return {}


def problem_response(error: TidingsError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {}) | retry_after_header(error)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Basic realm="Tidings", Bearer'
    return JSONResponse(
        problem_body(error), status_code=error.status, headers=headers, media_type=PROBLEM_JSON
    )


def generic_problem(status: int, detail: str) -> TidingsError:
    """No Vonage type fits an arbitrary HTTP error: RFC 7807's `about:blank`, titled by the status."""
    problem = TidingsError(detail)
    problem.status = status
    problem.type_url = "about:blank"
    problem.title = _status_phrase(status, detail)
    return problem


def error_response(request: Request, error: Exception) -> Response:
    """A documented error as itself; a client that went away as nothing (it is not there to
    read an answer); anything else logged and answered as a 500."""
    if isinstance(error, TidingsError):
        return problem_response(error)
    if isinstance(error, ClientDisconnect):
        log.debug("client disconnected during %s %s", request.method, request.scope["path"])
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    if database_unavailable(error):
        _report_outage(error)
        detail = IN_DOUBT_DETAIL if isinstance(error, CommitInDoubt) else None
        return problem_response(ServiceUnavailable(detail), {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})
    report_unexpected(error, request.method, request.scope["path"])
    return problem_response(TidingsError())


def report_unexpected(error: BaseException, method: str, path: str) -> None:
    """Logs an unexpected error with its traceback, once: Starlette answers it through our
    handler and then raises it again for the server (see api/access_log.py), which must not
    log it a second time."""
    if getattr(error, _REPORTED, False):
        return
    log.error("unhandled error on %s %s", method, path, exc_info=error)
    with contextlib.suppress(AttributeError):  # an exception type with __slots__ cannot be marked
        setattr(error, _REPORTED, True)


def _report_outage(error: BaseException) -> None:
    global _last_outage_log
    now = time.monotonic()
    if now - _last_outage_log >= OUTAGE_LOG_EVERY_SECONDS:
        _last_outage_log = now
        log.warning("the database cannot be reached; answering 503 meanwhile: %r", error)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_tidings_error(request: Request, error: Exception) -> Response:
        return error_response(request, error)

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        # The router's own headers (e.g. `Allow` on a 405, which RFC 9110 requires) go out too.
        if error.status_code == 404:
            return problem_response(NotFound(f"No resource at {request.url.path}"), error.headers)
        if error.status_code == 405:
            wrong_verb = WrongVerb(f"Request method '{request.method}' not supported")
            return problem_response(wrong_verb, error.headers)
        return problem_response(generic_problem(error.status_code, str(error.detail)), error.headers)

    async def on_validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        params = [
            InvalidParameter(".".join(str(p) for p in item["loc"][1:]) or "body", str(item["msg"]))
            for item in error.errors()
        ]
        return problem_response(InvalidParams(params))

    async def on_unexpected(request: Request, error: Exception) -> Response:
        return error_response(request, error)

    app.add_exception_handler(TidingsError, on_tidings_error)
    # Its own handler, so that Starlette answers it below its error middleware, which would
    # raise it again to the server as a crash.
    app.add_exception_handler(ClientDisconnect, on_unexpected)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for outage_type in _OUTAGE_TYPES:
        app.add_exception_handler(outage_type, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
    _document_validation_problems(app)


def _document_validation_problems(app: FastAPI) -> None:
    """FastAPI documents a 422 with its own `HTTPValidationError` body on every route that has
    parameters; the handler above answers those as problems (1150). Document what is sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            problem = documented_problems({422: "Invalid request"})[422]
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    declared = operation.get("responses", {}).get("422", {})
                    schema = declared.get("content", {}).get("application/json", {}).get("schema", {})
                    if schema.get("$ref") == "#/components/schemas/HTTPValidationError":
                        operation["responses"]["422"] = problem
            schemas = document.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _status_phrase(status: int, fallback: str) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return fallback
