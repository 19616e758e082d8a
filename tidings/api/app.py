"""The HTTP application: routers per public surface, one set of error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from tidings.api import (
    account,
    applications,
    health,
    messages_v1,
    numbers,
    prometheus,
    providers,
    simulator,
)
from tidings.api.access_log import AccessLog
from tidings.api.body_limit import BodySizeLimit
from tidings.api.direct_routes import DirectRoutes
from tidings.api.path_guard import FinalNewline
from tidings.api.problems import install_problem_handlers
from tidings.api.traced_requests import TracedRequests
from tidings.runtime import Runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = False) -> ASGIApp:
    """`manage_runtime` starts and stops the runtime with the ASGI lifespan (tests, plain ASGI
    servers); `tidings serve` manages it itself so several listeners can share one runtime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(
        title="Tidings",
        version="0.1.0",
        description="A self-hostable messaging gateway that speaks the Vonage Messages API.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(messages_v1.router)
    app.include_router(messages_v1.extensions)
    app.include_router(providers.router)
    app.include_router(health.router)
    if runtime.settings.metrics_enabled and runtime.settings.ops_port is None:
        app.include_router(prometheus.router)
    app.include_router(numbers.router)
    app.include_router(simulator.router)
    app.include_router(applications.router)
    app.include_router(account.router)
    # The body limit holds for every route, the direct ones included; outside it, the access log
    # sees every answer, the body limit's 413s too. The direct routes match their paths exactly,
    # so only the others need a final newline kept in the path.
    routes = DirectRoutes(app, messages_v1.DIRECT_ROUTES, others=FinalNewline(app))
    limited = BodySizeLimit(routes, max_bytes=runtime.settings.max_body_bytes)
    traced = TracedRequests(limited) if runtime.settings.otel_enabled else limited
    return AccessLog(traced, log_requests=runtime.settings.log_access)


def create_ops_app(runtime: Runtime) -> ASGIApp:
    """The operations listener (TIDINGS_OPS_PORT): probes and metrics only. Its requests are not
    access-logged: probes every few seconds would drown the lines that matter."""
    app = FastAPI(title="Tidings operations", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(health.router)
    if runtime.settings.metrics_enabled:
        app.include_router(prometheus.router)
    return AccessLog(app, log_requests=False)
