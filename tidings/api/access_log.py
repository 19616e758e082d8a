"""The outermost layer of the HTTP app: an access line per request, the 401 count, and the last
word on errors nothing below answered.

The access line has the method, the path (never the query string: the older APIs take
`api_secret` there), the status, the latency and the account's API key once a route has
authenticated the caller (`remember_account`). Starlette answers an unexpected error through our
handler, which logs it, and then raises it again for the server to log: it stops here, so a 500
is logged once. An error that escaped without an answer is answered (500) and logged here.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.problems import PROBLEM_JSON, problem_body, report_unexpected
from tidings.domain.errors import TidingsError
from tidings.logs import log_line
from tidings.metrics import AUTH_FAILURES

log = logging.getLogger("tidings.access")

_ACCOUNT = "tidings.api_key"  # the key in the request's state that names the authenticated account
_FIELDS = "tidings.access_fields"  # what a route adds to its request's access line
_AUTH_SCHEMES = {b"basic": "basic", b"bearer": "bearer"}


def remember_account(scope: Scope, api_key: str) -> None:
    """Called where a route authenticated its caller, for the access line."""
    scope.setdefault("state", {})[_ACCOUNT] = api_key


def add_to_access_line(scope: Scope, **fields: str | bool) -> None:
    """Fields a route wants on its request's access line (the send route: the message's uuid
    and channel). One line a request, not two: at thousands of sends a second, each log line
    costs the event loop a few per cent."""
    scope.setdefault("state", {}).setdefault(_FIELDS, {}).update(fields)


class AccessLog:
    def __init__(self, app: ASGIApp, *, log_requests: bool) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 0

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as error:
            report_unexpected(error, scope["method"], scope["path"])
            if not status:
                status = 500
                await _answer_500(send)
        if status == 401:
            AUTH_FAILURES.labels(_scheme(scope)).inc()
        if self.log_requests:
            method, path = scope["method"], scope["path"]
            fields = {
                "method": method,
                "path": path,
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "api_key": state.get(_ACCOUNT),
                "client": scope["client"][0] if scope.get("client") else None,
                **state.get(_FIELDS, {}),
            }
            log_line(log, logging.INFO, f"{method} {path} {status}", fields)


def _scheme(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return _AUTH_SCHEMES.get(value.split(b" ", 1)[0].lower(), "other")
    return "params" if b"api_key=" in scope.get("query_string", b"") else "none"


async def _answer_500(send: Send) -> None:
    payload = json.dumps(problem_body(TidingsError())).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(payload)).encode())]
    try:
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
    except Exception:
        log.debug("the 500 could not be sent: the client is gone")
