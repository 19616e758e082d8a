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
# What a process works around when it is missing, so it stays ready: without Redis, JWT ids are
# checked in the database (auth/replay_fallback.py). Taking every API process out of a load
# balancer because Redis is down would turn a degraded service into none.
WORKED_AROUND = frozenset({"redis"})


@router.get("/health", summary="Liveness: the process answers (the database is not checked)")
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "role": get_runtime(request).role.value})


@router.get(
    "/ready",
    summary="Readiness: the database and the connectors (in a worker); Redis (where configured) is reported, as degraded when down",
    responses={503: {"description": "Something this process needs is unavailable; see `checks`"}},
)
async def ready(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    checks = await runtime.readiness()
    ok = all(passed for name, passed in checks.items() if name not in WORKED_AROUND)
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "role": runtime.role.value,
            "checks": {name: _verdict(name, passed) for name, passed in checks.items()},
        },
        status_code=200 if ok else 503,
    )


def _verdict(name: str, passed: bool) -> str:
    if passed:
        return "ok"
    return "degraded" if name in WORKED_AROUND else "failed"
