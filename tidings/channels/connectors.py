"""The connector types Tidings has, found by their folders, and the connectors an operator
configured, built and run together.

Each connector type is a package under tidings/channels/ exporting `CONNECTOR_TYPE`: adding a
provider adds a folder; nothing here lists them.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

import tidings.channels
from tidings.channels.base import Connector, Ingress
from tidings.config import ConnectorSettings

if TYPE_CHECKING:
    # Only a type here: the provider packages that speak HTTP import httpx themselves, and a
    # process without one (the simulator alone) need not hold httpx and the CLI libraries
    # (rich, pygments) its package imports, ~5 MB resident.
    import httpx

log = logging.getLogger("tidings.connectors")


class ConnectorConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ConnectorType:
    """A kind of connector: its options model and how to build one from them. `build` takes the
    connector's name, its validated options and the HTTP transport its provider client should
    use (None: the network; tests pass a recording one)."""

    name: str
    options: type[BaseModel]
    build: Callable[[str, Any, httpx.AsyncBaseTransport | None], Connector]


@cache
def connector_types() -> Mapping[str, ConnectorType]:
    found: dict[str, ConnectorType] = {}
    for module in pkgutil.iter_modules(tidings.channels.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"tidings.channels.{module.name}")
        kind = getattr(package, "CONNECTOR_TYPE", None)
        if isinstance(kind, ConnectorType):
            found[kind.name] = kind
    return found


def build_connector(
    name: str, settings: ConnectorSettings, transport: httpx.AsyncBaseTransport | None = None
) -> Connector:
    kind = connector_types().get(settings.type)
    if kind is None:
        known = ", ".join(sorted(connector_types()))
        raise ConnectorConfigError(f"connector {name!r}: unknown type {settings.type!r} (known: {known})")
    try:
        options = kind.options.model_validate(settings.options)
    except ValidationError as error:
        raise ConnectorConfigError(f"connector {name!r}: {error}") from None
    return kind.build(name, options, transport)


class Connectors:
    """The configured connectors of this process. Each is started (with the ingress) only in a
    process that delivers; every process can still parse their HTTP callbacks."""

    def __init__(self, settings: Mapping[str, ConnectorSettings]) -> None:
        self._connectors = {name: build_connector(name, entry) for name, entry in settings.items()}
        self._types = {name: entry.type for name, entry in settings.items()}
        self._started: list[Connector] = []

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._connectors.values())

    def get(self, name: str) -> Connector | None:
        return self._connectors.get(name)

    def of_type(self, type_name: str) -> Connector | None:
        """The first configured connector of a type (the simulator's own endpoints use it)."""
        return next((self._connectors[name] for name, kind in self._types.items() if kind == type_name), None)

    @property
    def by_name(self) -> Mapping[str, Connector]:
        return self._connectors

    @property
    def all_started(self) -> bool:
        return len(self._started) == len(self._connectors)

    async def start(self, ingress: Ingress) -> None:
        for connector in self._connectors.values():
            await connector.start(ingress)
            self._started.append(connector)

    async def stop(self) -> None:
        while self._started:
            connector = self._started.pop()
            try:
                await connector.stop()
            except Exception:
                log.exception("stopping connector %s failed", connector.name)
