"""The operator's price list seen by country, as Vonage's Pricing API shows prices.

A country's default price is what a message to it costs when no longer prefix matches: the
price list's quote for its dialling code (which falls back to the channel's "" entry and then to
the configured default). Its networks are the longer prefixes within it. An entry names its
country, or the country is worked out from its prefix with `phonenumbers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import phonenumbers

from tidings.domain.country_names import COUNTRY_NAMES
from tidings.domain.pricing import PriceList
from tidings.services.pricing import Pricing

# Regions phonenumbers knows by dialling code; "001" stands for non-geographic numbers.
_REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if r != "001")
_REGION_SET = frozenset(_REGIONS)


@dataclass(frozen=True)
class NetworkPrice:
    prefix: str
    price: Decimal
    currency: str
    network_name: str | None


@dataclass(frozen=True)
class CountryPrice:
    country_code: str  # ISO 3166-1 alpha-2
    country_name: str
    dialing_prefix: str
    currency: str
    default_price: Decimal
    networks: tuple[NetworkPrice, ...]


def country_name(region: str) -> str:
    return COUNTRY_NAMES.get(region, region)


def calling_code_of(prefix: str) -> int | None:
    """The country calling code a digit prefix starts with (codes are prefix-free)."""
    if not prefix.isascii() or not prefix.isdigit():
        return None
    for length in (1, 2, 3):
        if len(prefix) >= length and int(prefix[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(prefix[:length])
    return None


def region_of_prefix(prefix: str) -> str | None:
    """The country numbers starting with `prefix` belong to; where a calling code is shared
    (+1, +7, +44 …) phonenumbers is asked about complete numbers with that start, and the code's
    main country answers when they tell nothing."""
    code = calling_code_of(prefix)
    if code is None:
        return None
    regions = [r for r in phonenumbers.region_codes_for_country_code(code) if r != "001"]
    if len(regions) <= 1 or len(prefix) == len(str(code)):
        return regions[0] if regions else None
    national = prefix[len(str(code)) :]
    for length in range(max(len(national), 6), 15):
        for filler in "20":
            number = phonenumbers.PhoneNumber(
                country_code=code, national_number=int(national.ljust(length, filler))
            )
            region = phonenumbers.region_code_for_number(number)
            if region:
                return str(region)
    return regions[0]


class PriceCatalogue:
    def __init__(self, pricing: Pricing) -> None:
        self._pricing = pricing
        # channel -> (the price list it was worked out from, networks by country)
        self._networks: dict[str, tuple[PriceList, dict[str, tuple[NetworkPrice, ...]]]] = {}

    def country(self, channel: str, region: str) -> CountryPrice | None:
        region = region.upper()
        if region not in _REGION_SET:
            return None
        dialing_prefix = str(phonenumbers.country_code_for_region(region))
        default = self._pricing.entry_for(channel, dialing_prefix)
        return CountryPrice(
            country_code=region,
            country_name=country_name(region),
            dialing_prefix=dialing_prefix,
            currency=default.currency,
            default_price=default.price,
            networks=self._networks_by_country(channel).get(region, ()),
        )

    def all_countries(self, channel: str) -> list[CountryPrice]:
        return [found for region in _REGIONS if (found := self.country(channel, region))]

    def by_prefix(self, channel: str, prefix: str) -> list[CountryPrice]:
        """The countries sharing the calling code `prefix` starts with (`1`: the US, Canada and
        the Caribbean)."""
        code = calling_code_of(prefix)
        if code is None:
            return []
        regions = sorted(r for r in phonenumbers.region_codes_for_country_code(code) if r in _REGION_SET)
        return [found for region in regions if (found := self.country(channel, region))]

    def _networks_by_country(self, channel: str) -> dict[str, tuple[NetworkPrice, ...]]:
        """Worked out once per price list: the list is replaced, never changed, on reload."""
        price_list = self._pricing.price_list
        cached = self._networks.get(channel)
        if cached is not None and cached[0] is price_list:
            return cached[1]
        found: dict[str, list[NetworkPrice]] = {}
        for entry in sorted(price_list.entries(), key=lambda e: e.prefix):
            code = calling_code_of(entry.prefix)
            if entry.channel != channel or code is None or len(entry.prefix) <= len(str(code)):
                continue  # a country's own code (or shorter) prices it by default, not as a network
            region = entry.country.upper() if entry.country else region_of_prefix(entry.prefix)
            if region is None or phonenumbers.country_code_for_region(region) != code:
                continue
            network = NetworkPrice(entry.prefix, entry.price, entry.currency, entry.network_name)
            found.setdefault(region, []).append(network)
        networks = {region: tuple(items) for region, items in found.items()}
        self._networks[channel] = (price_list, networks)
        return networks
