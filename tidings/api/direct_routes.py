"""The send endpoints, answered before FastAPI's machinery sees them.

Sending is what users measure per request, and FastAPI's middleware stack, router and dependency
solver cost about a fifth of a send (py-spy under load). The routes stay declared in FastAPI, which
documents them at /docs; this layer in front of it calls the same endpoint functions with a plain
Starlette request and renders errors with the same problem handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api.problems import error_response

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    def __init__(self, app: FastAPI, routes: Mapping[tuple[str, str], Endpoint], others: ASGIApp) -> None:
        """`routes` maps (method, path) to an endpoint that FastAPI also serves at that path;
        `others` serves every other request (`app`, or layers in front of it that only those
        need: a direct route matches its path exactly)."""
        self._app = app
        self._routes = dict(routes)
        self._others = others

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self._routes.get((scope.get("method", ""), scope.get("path", "")))
            if scope["type"] == "http"
            else None
        )
        if endpoint is None:
            await self._others(scope, receive, send)
            return
        scope["app"] = self._app  # what FastAPI would set: endpoints find the runtime through it
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as error:
            response = error_response(request, error)
        await response(scope, receive, send)
