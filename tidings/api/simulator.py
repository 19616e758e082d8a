"""POST /sim/inbound: the simulated network delivers a message to one of your addresses.

Who may call it: any account, with its API key and secret (Basic), and only for addresses that
account holds (numbers it rents, external accounts linked to it). The endpoint stands for the
network, but its webhooks go out signed as genuine traffic, so leaving it open (or open "on
loopback", which a reverse proxy makes everyone) would let anyone forge inbound messages into any
tenant's signed webhooks. An address the caller does not hold is answered exactly like one nobody
holds (404, kept as unroutable), so it reveals nothing about other accounts. The operator, who is
the network, uses `tidings sim inbound`, which routes to whichever account holds the address.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from tidings.api.dependencies import basic_account, get_runtime, json_body
from tidings.api.problems import documented_problems
from tidings.domain.account import Account
from tidings.domain.errors import NotFound, UnroutableInbound
from tidings.domain.inbound import Unroutable
from tidings.wire.simulator import parse_simulated_inbound, request_body_schema, to_arrival

router = APIRouter(tags=["Simulator"])


@router.post(
    "/sim/inbound",
    status_code=202,
    summary="Simulate an inbound message to one of your numbers or external accounts",
    responses=documented_problems(
        {
            401: "Missing or wrong credentials",
            404: "Not an address of this account; kept as unroutable",
            415: "Not JSON",
            422: "Invalid request",
        }
    ),
    openapi_extra={"requestBody": request_body_schema()},
)
async def simulate_inbound(
    request: Request,
    account: Annotated[Account, Depends(basic_account)],
    body: Annotated[Any, Depends(json_body)],
) -> JSONResponse:
    parsed = parse_simulated_inbound(body)
    runtime = get_runtime(request)
    simulator = runtime.connectors.of_type("simulator")
    if simulator is None:
        raise NotFound("No simulator is configured on this Tidings.")
    arrival = to_arrival(
        parsed,
        connector=simulator.name,
        provider_ref=uuid.uuid4().hex,
        received_at=datetime.now(UTC),
        account_id=account.api_key,
    )
    outcome = await runtime.ingress.inbound(arrival)
    if isinstance(outcome, Unroutable):
        raise UnroutableInbound(
            outcome.id,
            f"{arrival.to} is not an address of this account; the message was kept as unroutable.",
        )
    webhook_format = outcome.route.shape.value if outcome.route.url else None
    return JSONResponse(
        {"message_uuid": outcome.message_uuid, "webhook_format": webhook_format}, status_code=202
    )
