"""POST /sim/inbound: the simulated network delivers a message to a rented number.

Who may call it: any account, with its API key and secret (Basic), and only for numbers that
account rents. The endpoint stands for the network, but its webhooks go out signed as genuine
traffic, so leaving it open (or open "on loopback", which a reverse proxy makes everyone) would
let anyone forge inbound messages into any tenant's signed webhooks. Scoping it to the caller's
own numbers keeps tenants apart; a number the caller does not rent is answered exactly like one
nobody rents (404, kept as unroutable), so it reveals nothing about other accounts. The operator,
who is the network, uses `tidings sim inbound`, which routes to whichever account rents the number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from tidings.api.dependencies import basic_account, get_runtime, json_body
from tidings.domain.account import Account
from tidings.domain.errors import UnroutableInbound
from tidings.services.inbound import InboundReceiver, Unroutable
from tidings.wire.simulator import parse_simulated_inbound, to_arrival

router = APIRouter(tags=["Simulator"])


@router.post(
    "/sim/inbound",
    status_code=202,
    summary="Simulate an inbound message to one of your numbers",
    responses={404: {"description": "Not a number of this account; kept as unroutable"}},
)
async def simulate_inbound(
    request: Request,
    account: Annotated[Account, Depends(basic_account)],
    body: Annotated[Any, Depends(json_body)],
) -> JSONResponse:
    arrival = to_arrival(parse_simulated_inbound(body))
    runtime = get_runtime(request)
    worker = runtime.worker
    receiver = InboundReceiver(
        runtime.database,
        webhook_max_attempts=runtime.settings.webhook_max_attempts,
        wake_worker=worker.wake if worker else None,
    )
    outcome = await receiver.receive(arrival, now=datetime.now(UTC), account_id=account.api_key)
    if isinstance(outcome, Unroutable):
        raise UnroutableInbound(
            outcome.id,
            f"{arrival.to} is not a number of this account; the message was kept as unroutable.",
        )
    webhook_format = outcome.route.shape.value if outcome.route.url else None
    return JSONResponse(
        {"message_uuid": outcome.message_uuid, "webhook_format": webhook_format}, status_code=202
    )
