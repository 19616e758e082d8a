"""Probes for orchestrators: /health (liveness) and /ready (readiness).

Liveness says only that the process answers: it never looks at the database, so a database
outage does not get every Tidings process restarted (which would not bring the database back,
and would drop the requests in flight). Readiness checks what the process needs to do its work
and answers 503 while any of it is missing, so that a load balancer sends it no traffic.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tidings.api.dependencies import get_runtime

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness: the process answers (the database is not checked)")
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "role": get_runtime(request).role.value})


@router.get(
    "/ready",
    summary="Readiness: the database, Redis (where configured) and the connectors (in a worker)",
    responses={503: {"description": "Something this process needs is unavailable; see `checks`"}},
)
async def ready(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    checks = await runtime.readiness()
    ok = all(checks.values())
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "role": runtime.role.value,
            "checks": {name: "ok" if passed else "failed" for name, passed in checks.items()},
        },
        status_code=200 if ok else 503,
    )
