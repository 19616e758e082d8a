"""The built-in carrier simulator: delivers every message after a delay, offline, no accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tidings.channels.base import SubmitResult
from tidings.channels.simulator.mapping import simulated_result
from tidings.domain.message import Channel, Message


class SimulatorConnector:
    name = "simulator"
    channels = frozenset(Channel)

    def __init__(self, *, delivery_delay: timedelta) -> None:
        self._delay = delivery_delay

    async def submit(self, message: Message) -> SubmitResult:
        # The simulated carrier's id is derived from ours, so a retried submit of the same message
        # gets the same id, as an idempotent provider would answer.
        provider_ref = uuid.uuid5(uuid.NAMESPACE_URL, f"tidings-simulator:{message.uuid}").hex
        return simulated_result(message, provider_ref=provider_ref, delay=self._delay)

    async def close(self) -> None:
        return None
