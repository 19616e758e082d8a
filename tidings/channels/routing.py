"""Picks the connector that carries a message, by the operator's routing rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tidings.channels.base import Connector
from tidings.config import RouteRule
from tidings.domain.message import Channel, Message


class NoRoute(Exception):
    pass


class RoutingError(ValueError):
    """The configured rules name a connector that does not exist or cannot carry a channel."""


@dataclass(frozen=True)
class _Rule:
    connector: Connector
    channels: frozenset[Channel]
    to_prefix: str
    from_prefix: str

    def matches(self, message: Message) -> bool:
        return (
            message.channel in self.channels
            and message.to.startswith(self.to_prefix)
            and message.sender.startswith(self.from_prefix)
        )


class Router:
    """The first rule, in configured order, whose conditions the message meets."""

    def __init__(self, rules: Sequence[RouteRule], connectors: Mapping[str, Connector]) -> None:
        self._rules = [_compile(rule, connectors) for rule in rules]

    def route(self, message: Message) -> Connector:
        for rule in self._rules:
            if rule.matches(message):
                return rule.connector
        raise NoRoute(f"no route carries {message.channel.value} messages to {message.to}")


def _compile(rule: RouteRule, connectors: Mapping[str, Connector]) -> _Rule:
    connector = connectors.get(rule.connector)
    if connector is None:
        raise RoutingError(f"a route names the connector {rule.connector!r}, which is not configured")
    try:
        channels = frozenset(Channel(name) for name in rule.channels) if rule.channels else connector.channels
    except ValueError as error:
        raise RoutingError(f"a route to {rule.connector!r} names an unknown channel: {error}") from None
    if not channels <= connector.channels:
        missing = ", ".join(sorted(c.value for c in channels - connector.channels))
        raise RoutingError(f"a route sends {missing} to {rule.connector!r}, which does not carry it")
    return _Rule(connector, channels, rule.to_prefix or "", rule.from_prefix or "")
