"""The simulated carrier's stock of virtual numbers: deterministic and plausible for each country.

Each (country, type) block starts from libphonenumber's example number for that region and type
and varies its last three digits, keeping only numbers libphonenumber calls valid and of that
type. Where two types share an example (North America's fixed-line-or-mobile ranges), the digit
before the varied ones is shifted per type so the blocks never overlap. The same inputs always
give the same numbers, so tests and documentation can name them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType

from tidings.domain.number import AvailableNumber, NumberType, typical_features

BLOCK_SIZE = 1000

# Monthly rental in EUR, as the search results quote it.
_COSTS = {
    NumberType.MOBILE_LVN: Decimal("1.00"),
    NumberType.LANDLINE: Decimal("0.90"),
    NumberType.LANDLINE_TOLL_FREE: Decimal("2.50"),
}

# Which libphonenumber types a number of ours may have, and the example each block starts from.
_ACCEPTED = {
    NumberType.MOBILE_LVN: {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    NumberType.LANDLINE: {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    NumberType.LANDLINE_TOLL_FREE: {PhoneNumberType.TOLL_FREE},
}
_SEED_TYPE = {
    NumberType.MOBILE_LVN: PhoneNumberType.MOBILE,
    NumberType.LANDLINE: PhoneNumberType.FIXED_LINE,
    NumberType.LANDLINE_TOLL_FREE: PhoneNumberType.TOLL_FREE,
}
_TYPE_SHIFT = {NumberType.MOBILE_LVN: 0, NumberType.LANDLINE: 1, NumberType.LANDLINE_TOLL_FREE: 2}


@lru_cache(maxsize=256)
def pool_block(country: str, number_type: NumberType) -> tuple[AvailableNumber, ...]:
    """Every number of this country and type the simulator can rent out, ascending."""
    region = country.upper()
    example = phonenumbers.example_number_for_type(region, _SEED_TYPE[number_type])
    if example is None:
        return ()
    national = str(example.national_number)
    if len(national) < 5:
        return ()
    shifted = str((int(national[-4]) + _TYPE_SHIFT[number_type]) % 10)
    stem = national[:-4] + shifted
    features = typical_features(region, number_type)
    found: list[AvailableNumber] = []
    for suffix in range(BLOCK_SIZE):
        candidate = phonenumbers.PhoneNumber(
            country_code=example.country_code, national_number=int(f"{stem}{suffix:03d}")
        )
        if not phonenumbers.is_valid_number_for_region(candidate, region):
            continue
        if phonenumbers.number_type(candidate) not in _ACCEPTED[number_type]:
            continue
        found.append(
            AvailableNumber(
                msisdn=f"{example.country_code}{stem}{suffix:03d}",
                country=region,
                type=number_type,
                features=features,
                cost=_COSTS[number_type],
            )
        )
    return tuple(found)


def pool(country: str, types: Iterable[NumberType] | None = None) -> list[AvailableNumber]:
    """The country's numbers of the given types (all types when None), ascending by msisdn."""
    wanted = list(types) if types is not None else list(NumberType)
    seen: dict[str, AvailableNumber] = {}
    for number_type in wanted:
        for number in pool_block(country, number_type):
            seen.setdefault(number.msisdn, number)
    return sorted(seen.values(), key=lambda number: number.msisdn)


def find_in_pool(country: str, msisdn: str) -> AvailableNumber | None:
    for number in pool(country):
        if number.msisdn == msisdn:
            return number
    return None
