"""The guard against making Tidings call into private networks (SSRF).

A URL's host is resolved once and every address checked; the connection is then made to those
checked addresses (the HTTP client takes them from `checked_addresses` as its resolver, keeping
the host name for the Host header, SNI and the certificate check), so a DNS answer that changes
between check and connect (rebinding) cannot slip through. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ForbiddenDestination(OSError):
    """An OSError, so that an HTTP client's resolver may raise it and the client report it as a
    failure to connect."""


@dataclass(frozen=True)
class Destination:
    host: str
    port: int


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: IPv4-mapped, 6to4, NAT64 or the old IPv4-compatible
    `::a.b.c.d`. Python calls the latter three global whatever they embed (e.g. 10.0.0.1)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None or address.sixtofour is not None:
        return address.ipv4_mapped or address.sixtofour
    if address in _NAT64 or 1 < int(address) <= 0xFFFFFFFF:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    return address.is_global and not address.is_multicast


def verdict(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """True when Tidings may connect to this address."""
    address = _embedded_ipv4(address) or address
    return is_public(address) or any(address in network for network in allowed)


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ForbiddenDestination(f"cannot resolve {host}: {error}") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def destination(url: str) -> Destination:
    """Where an absolute http or https URL points; anything else is forbidden."""
    try:
        parts = urlsplit(url)
        explicit_port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as error:
        # A webhook URL that cannot be parsed is a failed attempt like any other refusal, not an
        # exception out of the sender (which would leave the attempt unrecorded).
        raise ForbiddenDestination(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenDestination("only absolute http and https URLs are called")
    return Destination(parts.hostname, explicit_port or (443 if parts.scheme == "https" else 80))


async def checked_addresses(host: str, port: int, allowed: Sequence[IPNetwork]) -> list[IPAddress]:
    """Every address `host` resolves to, when Tidings may connect to each of them."""
    addresses = await resolve(host, port)
    if not addresses:
        raise ForbiddenDestination(f"{host} has no address")
    for address in addresses:
        if not verdict(address, allowed):
            raise ForbiddenDestination(f"{host} resolves to {address}, which is not a public address")
    return addresses
