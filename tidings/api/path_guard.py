"""A newline at the end of a path stays part of the path.

Starlette matches each route with a pattern ending in `$`, which in Python's regular expressions
also matches just before a final newline: `/accounts/K/secrets/%0A` was served by the route of
`/accounts/K/secrets/` (the list) as if it named one secret. Routes are built by FastAPI (its
included routers compile their patterns themselves), so rather than patch them, a final newline
is handed on escaped, as the client sent it: no pattern can stop short of it, and the route whose
parameter it falls in answers it as it answers any value it does not know.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class FinalNewline:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("\n"):
            scope = {**scope, "path": scope["path"][:-1] + "%0A"}
        await self.app(scope, receive, send)
