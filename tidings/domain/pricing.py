"""Prices: per channel and destination prefix, longest prefix wins, in Decimal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PriceEntry:
    channel: str
    prefix: str  # destination prefix (E.164 digits); "" prices every destination of the channel
    price: Decimal  # per message part (SMS segment) or per message on other channels
    currency: str
    country: str | None = None
    network_name: str | None = None


class PriceList:
    """An immutable, in-memory price table: quoting a message is a few dictionary lookups."""

    def __init__(self, entries: Iterable[PriceEntry]) -> None:
        self._by_channel: dict[str, dict[str, PriceEntry]] = {}
        for entry in entries:
            self._by_channel.setdefault(entry.channel, {})[entry.prefix] = entry
        self._longest = {
            channel: max((len(prefix) for prefix in table), default=0)
            for channel, table in self._by_channel.items()
        }

    def entries(self) -> list[PriceEntry]:
        return [entry for table in self._by_channel.values() for entry in table.values()]

    def quote(self, channel: str, destination: str) -> PriceEntry | None:
        table = self._by_channel.get(channel)
        if not table:
            return None
        for length in range(min(self._longest[channel], len(destination)), -1, -1):
            entry = table.get(destination[:length])
            if entry is not None:
                return entry
        return None
