"""Picks the connector that carries a message."""

from __future__ import annotations

from collections.abc import Sequence

from tidings.channels.base import Connector
from tidings.domain.message import Message


class NoRoute(Exception):
    pass


class Router:
    """First connector, in configured order, that serves the message's channel."""

    def __init__(self, connectors: Sequence[Connector]) -> None:
        self._connectors = list(connectors)

    def route(self, message: Message) -> Connector:
        for connector in self._connectors:
            if message.channel in connector.channels:
                return connector
        raise NoRoute(f"no connector serves the {message.channel.value} channel")

    async def close(self) -> None:
        for connector in self._connectors:
            await connector.close()
