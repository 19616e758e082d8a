"""POST /sim/inbound: a message the simulated network delivers to a rented number."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tidings.channels.simulator.mapping import SIMULATED_NETWORK_CODE
from tidings.domain.errors import InvalidParameter, InvalidParams, UnsupportedChannel
from tidings.domain.message import Channel
from tidings.services.inbound import InboundArrival
from tidings.wire.validation_errors import invalid_parameters

# Rented numbers receive SMS; other channels reach Tidings through their own platforms' accounts.
SIMULATED_CHANNELS = frozenset({Channel.SMS})


class SimulatedInbound(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    channel: Channel
    from_: str = Field(alias="from", min_length=1, max_length=50)
    to: str
    text: str = Field(max_length=10_000)
    network_code: str | None = Field(None, pattern=r"^\d{5,6}$")

    @field_validator("to")
    @classmethod
    def _msisdn(cls, value: str) -> str:
        digits = value.removeprefix("+")
        if not digits.isdigit() or not 6 <= len(digits) <= 15:
            raise ValueError("must be a number in E.164 format")
        return digits


def parse_simulated_inbound(body: Any) -> SimulatedInbound:
    if not isinstance(body, dict):
        raise InvalidParams([InvalidParameter("body", "must be a JSON object.")])
    channel = body.get("channel")
    if channel is not None and channel not in {c.value for c in SIMULATED_CHANNELS}:
        raise UnsupportedChannel(f"The simulator delivers inbound `sms` only, not `{channel}`.")
    try:
        return SimulatedInbound.model_validate(body)
    except ValidationError as error:
        raise InvalidParams(invalid_parameters(error)) from None


def to_arrival(request: SimulatedInbound) -> InboundArrival:
    return InboundArrival(
        channel=request.channel,
        sender=request.from_.removeprefix("+"),
        to=request.to,
        text=request.text,
        network_code=request.network_code or SIMULATED_NETWORK_CODE,
        provider="simulator",
    )
