"""Virtual numbers (Numbers API): what an account rents, and what the pool still offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum


class NumberType(StrEnum):
    MOBILE_LVN = "mobile-lvn"
    LANDLINE = "landline"
    LANDLINE_TOLL_FREE = "landline-toll-free"


class Feature(StrEnum):
    VOICE = "VOICE"
    SMS = "SMS"
    MMS = "MMS"


# The order the published examples list features in (["VOICE", "SMS", "MMS"]).
_FEATURE_ORDER = {feature: index for index, feature in enumerate(Feature)}


def ordered_features(features: Iterable[Feature]) -> tuple[Feature, ...]:
    return tuple(sorted(set(features), key=_FEATURE_ORDER.__getitem__))


def parse_features(value: str) -> tuple[Feature, ...]:
    """`SMS,VOICE` → (VOICE, SMS); raises ValueError on an unknown or empty feature."""
    parts = [part.strip().upper() for part in value.split(",")]
    if not parts or any(not part for part in parts):
        raise ValueError("features must be a comma-separated list of SMS, VOICE, MMS")
    return ordered_features(Feature(part) for part in parts)


# Countries where Vonage's numbers of every type also carry messaging (10DLC, toll-free SMS).
_NORTH_AMERICA = frozenset({"US", "CA"})


def typical_features(country: str, number_type: NumberType) -> tuple[Feature, ...]:
    """What a number of this country and type can do when nobody says otherwise."""
    if country.upper() in _NORTH_AMERICA:
        if number_type is NumberType.LANDLINE_TOLL_FREE:
            return (Feature.VOICE, Feature.SMS)
        return (Feature.VOICE, Feature.SMS, Feature.MMS)
    if number_type is NumberType.MOBILE_LVN:
        return (Feature.VOICE, Feature.SMS)
    return (Feature.VOICE,)


class VoiceCallbackType(StrEnum):
    SIP = "sip"
    TEL = "tel"
    APP = "app"


class SearchPattern(IntEnum):
    STARTS_WITH = 0
    CONTAINS = 1
    ENDS_WITH = 2


@dataclass(frozen=True)
class NumberPattern:
    """Matches E.164 digits (country code included), as `pattern` + `search_pattern` describe."""

    digits: str
    strategy: SearchPattern = SearchPattern.STARTS_WITH

    def matches(self, msisdn: str) -> bool:
        if self.strategy is SearchPattern.STARTS_WITH:
            return msisdn.startswith(self.digits)
        if self.strategy is SearchPattern.ENDS_WITH:
            return msisdn.endswith(self.digits)
        return self.digits in msisdn


@dataclass(frozen=True)
class Page:
    """`index` counts from 1, as the Numbers API does."""

    index: int = 1
    size: int = 10

    @property
    def offset(self) -> int:
        return (self.index - 1) * self.size


@dataclass(frozen=True)
class OwnedNumber:
    msisdn: str
    account_id: str
    country: str
    type: NumberType
    features: tuple[Feature, ...]
    created_at: datetime
    app_id: str | None = None
    mo_http_url: str | None = None
    voice_callback_type: VoiceCallbackType | None = None
    voice_callback_value: str | None = None
    voice_status_callback: str | None = None


@dataclass(frozen=True)
class AvailableNumber:
    msisdn: str
    country: str
    type: NumberType
    features: tuple[Feature, ...]
    cost: Decimal  # monthly rental, in EUR

    def has_features(self, wanted: Iterable[Feature]) -> bool:
        return set(wanted) <= set(self.features)


@dataclass(frozen=True)
class OwnedNumberFilter:
    country: str | None = None
    application_id: str | None = None
    has_application: bool | None = None
    pattern: NumberPattern | None = None


@dataclass(frozen=True)
class AvailableNumberQuery:
    country: str
    type: NumberType | None = None
    features: tuple[Feature, ...] = ()
    pattern: NumberPattern | None = None
    page: Page = Page()


# What /number/update may change; a key present with None clears the setting.
UPDATABLE_SETTINGS = frozenset(
    {"app_id", "mo_http_url", "voice_callback_type", "voice_callback_value", "voice_status_callback"}
)


@dataclass(frozen=True)
class NumberUpdate:
    country: str
    msisdn: str
    changes: dict[str, str | None]

    def __post_init__(self) -> None:
        unknown = set(self.changes) - UPDATABLE_SETTINGS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
