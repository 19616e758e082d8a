"""GET /health: 200 while the database answers, 503 when it does not."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tidings.api.dependencies import get_runtime

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness and database reachability")
async def health(request: Request) -> JSONResponse:
    runtime = get_runtime(request)
    ok = await runtime.database.ping()
    return JSONResponse(
        {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if ok else "unreachable",
            "role": runtime.role.value,
        },
        status_code=200 if ok else 503,
    )
