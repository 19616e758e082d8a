"""A server span per HTTP request, installed only when tracing is on (tidings/tracing.py).

The span continues the client's trace when the request carries a W3C `traceparent`; it is named
after the route's template once routing has found it (`PATCH /v1/messages/{message_uuid}`), so
that names do not multiply with every uuid.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings import tracing

_PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})


class TracedRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name.decode("latin-1") in _PROPAGATED
        }
        method = scope["method"]
        attributes: dict[str, str | int] = {"http.request.method": method, "url.path": scope["path"]}
        with tracing.span(method, parent=headers, server=True, attributes=attributes) as span:

            async def watching_send(message: Message) -> None:
                if span is not None and message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app(scope, receive, watching_send)
            if span is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or scope["path"]
                span.update_name(f"{method} {template}")
