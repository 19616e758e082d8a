"""The guard against making Tidings call into private networks (SSRF).

A URL's host is resolved once, every address checked, and the request is then made to the
checked address itself (with the original host name for the Host header, SNI and certificate
check), so a DNS answer that changes between check and connect (rebinding) cannot slip through.
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


class ForbiddenDestination(Exception):
    pass


@dataclass(frozen=True)
class PinnedTarget:
    """A URL rewritten to a checked IP address, and the name to present to the server."""

    url: str
    host_header: str
    server_name: str


def parse_networks(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def verdict(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """True when Tidings may connect to this address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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


async def pin(url: str, allowed: Sequence[IPNetwork]) -> PinnedTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenDestination("only absolute http and https URLs are called")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    if not addresses:
        raise ForbiddenDestination(f"{parts.hostname} has no address")
    for address in addresses:
        if not verdict(address, allowed):
            raise ForbiddenDestination(
                f"{parts.hostname} resolves to {address}, which is not a public address"
            )
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rpartition("@")[2]
    return PinnedTarget(url=pinned, host_header=host_header, server_name=parts.hostname)
