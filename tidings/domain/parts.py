"""A message travels as one or more parts (an SMS of several segments, each with its own carrier
reference and receipt); its status is the combination of theirs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Status

_FAILED = frozenset({Status.REJECTED, Status.UNDELIVERABLE})


@dataclass(frozen=True)
class PartState:
    index: int
    status: Status
    error: DeliveryError | None = None


@dataclass(frozen=True)
class Combined:
    status: Status
    error: DeliveryError | None = None


def combined_status(parts: Sequence[PartState]) -> Combined:
    """A message fails as soon as one part does, with the error of the first failed part (lowest
    index); it is delivered when every part is, and read when every part is read."""
    if not parts:
        return Combined(Status.ACCEPTED)
    failed = sorted((part for part in parts if part.status in _FAILED), key=lambda part: part.index)
    if failed:
        return Combined(failed[0].status, failed[0].error)
    if all(part.status is Status.READ for part in parts):
        return Combined(Status.READ)
    if all(part.status in (Status.DELIVERED, Status.READ) for part in parts):
        return Combined(Status.DELIVERED)
    if all(part.status is not Status.ACCEPTED for part in parts):
        return Combined(Status.SUBMITTED)
    return Combined(Status.ACCEPTED)
