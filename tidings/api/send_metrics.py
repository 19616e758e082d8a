"""Counting the sends that were refused, by channel and reason (accepts are counted in the route)."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect

from tidings.domain.channel_registry import CHANNELS
from tidings.domain.errors import TidingsError
from tidings.metrics import ACCEPTS

_REASONS = {
    401: "unauthorized",
    402: "low_balance",
    413: "too_large",
    415: "invalid",
    422: "invalid",
    429: "throttled",
}


def count_refused_send(body: Any, error: BaseException) -> None:
    """A refusal is rarer than an accept and already costs an error answer: the label lookup
    here does not matter. The channel is the one requested when it is one of ours."""
    requested = body.get("channel") if isinstance(body, dict) else None
    channel = requested if isinstance(requested, str) and requested in CHANNELS else "unknown"
    if isinstance(error, TidingsError):
        reason = _REASONS.get(error.status, "error" if error.status >= 500 else "refused")
    elif isinstance(error, ClientDisconnect):
        reason = "disconnected"
    else:
        reason = "error"
    ACCEPTS.labels(channel, reason).inc()
