"""/providers/<connector>/…: where providers' HTTP callbacks (receipts, inbound messages) arrive.

Each is handed whole to the connector it names, which authenticates it its provider's way (a
signature, a token in the URL) and feeds what it says to the ingress. Any process serving the API
can take callbacks: parsing one needs no connection of the connector's own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tidings.api.dependencies import get_runtime
from tidings.api.problems import documented_problems
from tidings.channels.base import CallbackRequest
from tidings.domain.errors import NotFound

router = APIRouter(tags=["Provider callbacks"])
METHODS = ["GET", "POST", "PUT"]


async def provider_callback(request: Request, connector: str, path: str) -> Response:
    runtime = get_runtime(request)
    target = runtime.connectors.get(connector)
    if target is None:
        raise NotFound(f"No connector named {connector!r} is configured.")
    callback = CallbackRequest(
        method=request.method,
        path=path,
        query=dict(request.query_params),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=await request.body(),
    )
    answer = await target.handle_callback(callback, runtime.ingress)
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


# One route per method, so that each operation has an id of its own in the OpenAPI document.
for _method in METHODS:
    router.add_api_route(
        "/providers/{connector}/{path:path}",
        provider_callback,
        methods=[_method],
        operation_id=f"provider_callback_{_method.lower()}",
        summary="A provider's callback to one of the configured connectors",
        responses=documented_problems({404: "No connector of that name"}),
    )
