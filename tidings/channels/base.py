"""What every channel connector implements, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Channel, Message, Status, Usage


@dataclass(frozen=True)
class ProviderReport:
    """A status the provider reports for a message, possibly later (a delivery receipt)."""

    status: Status
    provider_ref: str
    after: timedelta = timedelta(0)
    error: DeliveryError | None = None
    network_code: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    """The provider took the message. `reports` are statuses the connector already knows will
    follow (the simulator's timers); real providers send theirs later through their callbacks.
    `segments` and `usage` are set only when the provider reports them."""

    provider_ref: str
    segments: int | None = None
    usage: Usage | None = None
    reports: tuple[ProviderReport, ...] = field(default_factory=tuple)


class SubmitRejected(Exception):
    """The provider refused the message for good: the message ends `rejected` with this error."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(error.detail)
        self.error = error


class ProviderUnavailable(Exception):
    """A temporary failure (timeout, throttling, connection loss): try the submit again later."""

    def __init__(self, reason: str, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Connector(Protocol):
    name: str
    channels: frozenset[Channel]

    async def submit(self, message: Message) -> SubmitResult:
        """Hand the message to the provider. Raises SubmitRejected or ProviderUnavailable."""
        ...

    async def close(self) -> None: ...
