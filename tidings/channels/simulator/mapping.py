"""How the simulated network treats a message: which statuses follow, and when."""

from __future__ import annotations

from datetime import timedelta

from tidings.channels.base import ProviderReport, SubmitResult
from tidings.domain.billing import billable_parts
from tidings.domain.message import Message, Status

SIMULATED_NETWORK_CODE = "99999"


def simulated_result(message: Message, *, provider_ref: str, delay: timedelta) -> SubmitResult:
    """A handset that is always reachable: the carrier accepts, then reports delivery after `delay`."""
    return SubmitResult(
        provider_ref=provider_ref,
        segments=billable_parts(message),
        reports=(
            ProviderReport(
                status=Status.DELIVERED,
                provider_ref=provider_ref,
                after=delay,
                network_code=SIMULATED_NETWORK_CODE,
            ),
        ),
    )
