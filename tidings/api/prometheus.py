"""GET /metrics: this process's Prometheus metrics, with the queue's gauges read just before.

No authentication, as is usual for an exporter: nothing here names an account, an address or a
message (see tidings/metrics.py). What it does reveal is traffic volume; where that matters,
serve it on the operations listener (TIDINGS_OPS_PORT) on a private address, which takes it off
the public one, or switch it off (TIDINGS_METRICS_ENABLED=false).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from tidings.api.dependencies import get_runtime

log = logging.getLogger("tidings.metrics")
router = APIRouter(tags=["Operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    try:
        await get_runtime(request).queue_gauges.refresh()
    except Exception as error:
        # The rest of the metrics are worth having during a database outage; the queue's gauges
        # keep their last values.
        log.warning("reading the queue's depth for /metrics failed: %r", error)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
