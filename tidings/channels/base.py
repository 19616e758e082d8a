"""What a connector is, and what it may call back into.

A *connector* carries messages of one or more channels to a provider (a carrier over SMPP, a
platform's HTTP API, the built-in simulator). Its life:

- `start(ingress)` runs once, in the process that owns its connections (worker processes: an
  SMPP bind lives there, not in every API process); `stop()` closes them.
- `submit(message)` hands a message over and returns the provider's reference of every part.
- `update(message, status)` carries a client's PATCH (mark an inbound message read, revoke an
  outbound one) to the provider.
- Everything the provider says back (receipts, read receipts, inbound messages) goes into the
  `Ingress`: from a socket, from a timer, or from an HTTP callback, which any process may
  receive under `/providers/<connector name>/…` and hand to `handle_callback`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from tidings.domain.channel_registry import MessageUpdate
from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.events import Receipt
from tidings.domain.inbound import InboundArrival, Received, Unroutable
from tidings.domain.message import Channel, Message, MessageRecord, Usage


@dataclass(frozen=True)
class Submission:
    """The provider took the message: its reference for each part, in order, and its price when
    it quotes one (otherwise the price Tidings quoted at accept time stands)."""

    parts: tuple[str, ...]
    usage: Usage | None = None


class SubmitRejected(Exception):
    """The provider refused the message for good: the message ends `rejected` with this error."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(error.detail)
        self.error = error


class ProviderUnavailable(Exception):
    """A temporary failure (timeout, throttling, connection loss): try again later."""

    def __init__(self, reason: str, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UpdateRefused(Exception):
    """The provider cannot do what the client asked (too late to revoke, say)."""


class Ingress(Protocol):
    """The one way in for what providers report. Each call returns once its effect is durable:
    a connector may acknowledge the provider then, and not before."""

    async def report(self, receipt: Receipt) -> None:
        """A part's status, now. A receipt for a part not yet recorded (it can overtake the
        submit's own answer) is kept and applied once the part is known."""
        ...

    async def schedule(self, receipt: Receipt, *, at: datetime) -> None:
        """A receipt to apply at `at`, durably (the simulator's network delays)."""
        ...

    async def inbound(self, arrival: InboundArrival) -> Received | Unroutable:
        """A message for one of our addresses: routed to its account and its webhook queued."""
        ...


@dataclass(frozen=True)
class CallbackRequest:
    """A provider's HTTP callback, as received: `path` is what follows the connector's prefix."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class CallbackResponse:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class Connector(Protocol):
    name: str
    channels: frozenset[Channel]

    async def start(self, ingress: Ingress) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, message: Message) -> Submission:
        """Hand the message to the provider. Raises SubmitRejected or ProviderUnavailable."""
        ...

    async def update(self, message: MessageRecord, update: MessageUpdate) -> None:
        """Tell the provider (mark read, revoke); raises UpdateRefused or ProviderUnavailable."""
        ...

    async def handle_callback(self, request: CallbackRequest, ingress: Ingress) -> CallbackResponse:
        """Parse (and authenticate) a provider's HTTP callback and feed it to the ingress."""
        ...
