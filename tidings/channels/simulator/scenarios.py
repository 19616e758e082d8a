"""How the simulated network treats a message, chosen by the recipient's last four digits so that
a test can ask for any outcome by the number (or id) it sends to:

| recipient ends in | what happens |
|---|---|
| 9901 | refused when submitted: `rejected` at once (1240 illegal number; on app platforms 1300 not a user) |
| 9902 | `submitted`, then `undeliverable` after the delay (1190 absent subscriber; platforms 1300) |
| 9903 | `submitted`, then `rejected` after the delay (1210 anti-spam; platforms 1340 outside the window) |
| 9904 | `submitted`, `delivered`, and never read |
| 9905 | `submitted`, and nothing more: the handset never answers |
| anything else | `submitted`, `delivered` after the delay, then `read` where the channel reports reads |
"""

from __future__ import annotations

from dataclasses import dataclass

from tidings.domain.channel_registry import ChannelSpec
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Status

SIMULATED_NETWORK_CODE = "99999"


@dataclass(frozen=True)
class Scenario:
    refused: DeliveryError | None = None  # raised at submit
    outcome: Status | None = Status.DELIVERED  # reported after the delay; None: nothing
    error: DeliveryError | None = None  # with a failed outcome
    read: bool = True  # then read, where the channel reports reads


def _error(spec: ChannelSpec, carrier: DeliveryErrorCode, platform: DeliveryErrorCode) -> DeliveryError:
    return DeliveryError.of(carrier if spec.carrier_network else platform)


def scenario_for(recipient: str, spec: ChannelSpec) -> Scenario:
    ending = recipient[-4:]
    if ending == "9901":
        refused = _error(spec, DeliveryErrorCode.ILLEGAL_NUMBER, DeliveryErrorCode.NOT_IN_PROVIDER_NETWORK)
        return Scenario(refused=refused, outcome=None)
    if ending == "9902":
        error = _error(
            spec, DeliveryErrorCode.ABSENT_SUBSCRIBER_PERMANENT, DeliveryErrorCode.NOT_IN_PROVIDER_NETWORK
        )
        return Scenario(outcome=Status.UNDELIVERABLE, error=error)
    if ending == "9903":
        error = _error(spec, DeliveryErrorCode.ANTI_SPAM, DeliveryErrorCode.OUTSIDE_WINDOW)
        return Scenario(outcome=Status.REJECTED, error=error)
    if ending == "9904":
        return Scenario(read=False)
    if ending == "9905":
        return Scenario(outcome=None)
    return Scenario()
