"""The built-in carrier simulator: a network for every channel, offline, with no accounts anywhere.

It behaves as a provider does: it takes a message (or refuses it), gives each part a reference,
and later reports on each part through the ingress, like any carrier's receipt. Its "later" is a
durable timed receipt, so a restart loses none of them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tidings.channels.base import (
    CallbackRequest,
    CallbackResponse,
    Ingress,
    Submission,
    SubmitRejected,
    UpdateRefused,
)
from tidings.channels.simulator.scenarios import SIMULATED_NETWORK_CODE, scenario_for
from tidings.domain.billing import billable_parts
from tidings.domain.channel_registry import CHANNELS, MessageUpdate, UpdateStatus, channel_spec
from tidings.domain.events import Receipt
from tidings.domain.message import Message, MessageRecord, Status


class SimulatorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_delay_seconds: float = Field(default=1.0, ge=0)
    read_delay_seconds: float | None = Field(default=None, ge=0)  # None: as the delivery delay


class SimulatorConnector:
    channels = frozenset(CHANNELS)

    def __init__(self, name: str, options: SimulatorOptions, _transport: object = None) -> None:
        """The simulator calls no provider, so it has no use for an HTTP transport."""
        self.name = name
        self._delay = timedelta(seconds=options.delivery_delay_seconds)
        read_delay = options.read_delay_seconds
        self._read_delay = self._delay if read_delay is None else timedelta(seconds=read_delay)
        self._ingress: Ingress | None = None

    async def start(self, ingress: Ingress) -> None:
        self._ingress = ingress

    async def stop(self) -> None:
        self._ingress = None

    async def submit(self, message: Message) -> Submission:
        spec = channel_spec(message.channel)
        if self._ingress is None or spec is None:
            raise RuntimeError("the simulator is not started")
        scenario = scenario_for(message.to, spec)
        if scenario.refused is not None:
            raise SubmitRejected(scenario.refused)
        # A part's reference is derived from the message, so a retried submit of the same message
        # gets the same references, as an idempotent provider would answer.
        refs = tuple(
            uuid.uuid5(uuid.NAMESPACE_URL, f"tidings-simulator:{message.uuid}:{index}").hex
            for index in range(billable_parts(message))
        )
        now = datetime.now(UTC)
        network = SIMULATED_NETWORK_CODE if spec.carrier_network else None
        for ref in refs:
            if scenario.outcome is None:
                continue
            delivered_at = now + self._delay
            receipt = Receipt(
                self.name, ref, scenario.outcome, delivered_at, error=scenario.error, network_code=network
            )
            await self._ingress.schedule(receipt, at=delivered_at)
            if scenario.outcome is Status.DELIVERED and scenario.read and spec.has_read_receipts:
                read_at = delivered_at + self._read_delay
                await self._ingress.schedule(Receipt(self.name, ref, Status.READ, read_at), at=read_at)
        return Submission(parts=refs)

    async def update(self, message: MessageRecord, update: MessageUpdate) -> None:
        """The simulated handset takes any read mark; a revocation only before delivery."""
        if update.status is UpdateStatus.REVOKED and message.status not in (
            Status.ACCEPTED,
            Status.SUBMITTED,
        ):
            raise UpdateRefused(f"the message is already {message.status.value}")

    async def handle_callback(self, request: CallbackRequest, ingress: Ingress) -> CallbackResponse:
        return CallbackResponse(status=404, body=b"the simulator takes no provider callbacks")
