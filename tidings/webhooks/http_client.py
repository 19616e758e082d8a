"""The webhook sender's HTTP/1.1 client: one POST at a time on kept-alive connections, the answer
read by httptools.

Written here rather than taken from aiohttp (which Tidings used before) for its cost: an aiohttp
POST to a local receiver takes 140-200 µs of CPU, this client about 30 (measured side by side on
the two-core reference machine, see bench/README.md). A message's delivery makes two webhook
POSTs, and with aiohttp they were about a third of the worker's CPU: a drain of 6,000 messages
through one worker cost 1,700 µs a message, and 1,100 with the POSTs taken out. A webhook needs
little of a general client: no redirects (never followed: the SSRF guard checks one address), no
cookies, proxies, compression or streaming bodies. The part that has to be right for any server,
reading the answer, is httptools (llhttp, the parser uvicorn reads Tidings' own requests with).

The guard: a connection is made only to addresses `ssrf.checked_addresses` returned for the URL's
host, so a name is resolved and checked once per connection and the client never looks it up by
itself. A kept-alive connection stays on the address it was checked for. The host as written
(IDNA-encoded) goes in the Host header, SNI and the certificate check.

How much is read of what a receiver answers is bounded: its head (`MAX_HEAD_BYTES`), its body
(`MAX_ANSWER_BYTES`, read and thrown away: the status is what counts); a connection whose answer
went past either is closed rather than kept. At most `idle_per_origin` connections are kept to one
scheme, host and port, each for `keep_alive_seconds` at most; how many are open at once is bounded
by the caller (the endpoint slots).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

import httptools
from yarl import URL

from tidings.webhooks import ssrf
from tidings.webhooks.ssrf import ForbiddenDestination, IPNetwork

MAX_HEAD_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 64 * 1024
KEEP_ALIVE_SECONDS = 15.0
# Kept as written in a request target: the reserved characters and existing %-escapes.
_SAFE = "!#$%&'()*+,/:;=?@[]~"
_TARGETS_KEPT = 1024  # parsed URLs kept (a worker sends to the same few endpoints again and again)
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")  # a DNS name as yarl encodes it (IDNA)


class ConnectError(OSError):
    """No connection could be made to any of the host's checked addresses."""


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x as the parser reads it, or is larger than allowed."""


class ConnectionLost(Exception):
    """The connection closed before the answer's head arrived."""

    def __init__(self, message: str, *, answered_nothing: bool) -> None:
        super().__init__(message)
        self.answered_nothing = answered_nothing


@dataclass(frozen=True)
class Origin:
    """Scheme, host (ASCII, as yarl encodes it) and port: what a kept-alive connection is good for."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class Target:
    origin: Origin
    head: bytes  # the request line and the Host header, with the line break that ends it


def parse_target(url: str) -> Target:
    """Where a webhook URL points, read once as the client will use it. ForbiddenDestination for a
    URL that is not an absolute http(s) URL, a host that is a number spelled in some other way than
    an address's canonical form (resolvers read those differently from one another), a host that
    is neither an address nor a DNS name, and an IPv6 address with a zone."""
    ssrf.destination(url)  # the scheme, a host, a port in range: refused with its reason
    try:
        parsed = URL(url)
        host = parsed.raw_host or ""
        port = parsed.port
    except ValueError as error:
        raise ForbiddenDestination(f"not a valid URL: {error}") from None
    if port is None or not host:
        raise ForbiddenDestination("only absolute http and https URLs are called")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host or host.replace(".", "").isdigit():
            raise ForbiddenDestination(f"{host} is not an address in canonical form") from None
        if not _HOST_NAME.fullmatch(host):
            # It goes into the Host header as it is: only what a DNS name is made of.
            raise ForbiddenDestination(f"{host!r} is not a host name") from None
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ForbiddenDestination(f"{host} names a network interface")
    shown = f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host
    if port != (443 if parsed.scheme == "https" else 80):
        shown = f"{shown}:{port}"
    # The path and query as written, with what may not go on the wire percent-encoded and the
    # escapes already there kept (yarl would decode some: %2F in a query becomes /).
    written = urlsplit(url)
    request_target = quote(written.path or "/", safe=_SAFE) + (
        f"?{quote(written.query, safe=_SAFE)}" if written.query else ""
    )
    head = f"POST {request_target} HTTP/1.1\r\nHost: {shown}\r\n".encode("ascii")
    return Target(Origin(parsed.scheme, host, port), head)


class _Connection(asyncio.Protocol):
    """One connection and the answer to the request it is waiting on."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_timer: asyncio.TimerHandle | None = None
        # One parser for the connection's answers: a connection is reused only after an answer
        # the parser read to its end, when it is ready for the next.
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[int] | None = None
        self._status: int | None = None  # the final answer's, once its head is read
        self._head_bytes = 0
        self._body_bytes = 0
        self._received = False  # any byte of an answer to the current request
        self.reusable = False

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self._close()  # nothing was asked: a server that talks out of turn is not reused
            return
        self._received = True
        if self._status is None:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as error:
            self._fail(ProtocolError(f"not an HTTP answer: {error}"))
        else:
            # The parser keeps none of the head (no header callbacks): only its length is bounded.
            if self._status is None and self._head_bytes > MAX_HEAD_BYTES:
                self._fail(ProtocolError(f"the answer's head is larger than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        return False  # close: this client never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # if it was idle, its timer still comes to take it off the idle list
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._status is not None:
            # An answer whose body runs to the end of the connection (no length given): its
            # status is all this client wanted.
            answer.set_result(self._status)
            return
        reason = f": {exc}" if exc else ""
        answer.set_exception(
            ConnectionLost(
                f"the connection closed before an answer{reason}", answered_nothing=not self._received
            )
        )

    # -- httptools callbacks --

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():
            self._close()  # more than one answer to one request: the connection is not reused

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status >= 200:
            self._status = status

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_ANSWER_BYTES and self._answer is not None and not self._answer.done():
            status = self._status
            self._close()  # the rest is not read: the connection cannot carry another request
            if status is not None:
                self._answer.set_result(status)

    def on_message_complete(self) -> None:
        if self._status is None:
            self._head_bytes = 0  # an interim answer (100 Continue): the final one follows
            return
        if self._answer is not None and not self._answer.done():
            self.reusable = self._parser.should_keep_alive()
            self._answer.set_result(self._status)

    # -- the client's side --

    def request(self, data: bytes) -> asyncio.Future[int]:
        """Sends a request; the future is its answer's status."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._status = None
        self._head_bytes = self._body_bytes = 0
        self._received = False
        self.reusable = False
        self.transport.write(data)
        return self._answer

    def abandon(self) -> None:
        """The request was given up on (a timeout): its answer may still come, so the connection goes."""
        self._close()

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self._close()

    def _close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()


class WebhookClient:
    """POSTs to webhook receivers over connections kept per origin (see the module's docstring)."""

    def __init__(
        self,
        allowed_networks: tuple[IPNetwork, ...],
        *,
        tls: ssl.SSLContext | None = None,
        idle_per_origin: int = 32,
        keep_alive_seconds: float = KEEP_ALIVE_SECONDS,
    ) -> None:
        self._allowed = allowed_networks
        self._tls = tls if tls is not None else ssl.create_default_context()
        self._idle_per_origin = idle_per_origin
        self._keep_alive = keep_alive_seconds
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._open: set[_Connection] = set()

    async def post(self, url: str, fixed_headers: bytes, body: bytes) -> int:
        """POSTs `body` and returns the answer's status. `fixed_headers` are the request's other
        header lines, each ending in CRLF (Content-Length is added here). A kept-alive connection
        that the receiver closed as the request went out is retried once on a new connection:
        nothing of an answer came back, and a server closes an idle connection at any moment."""
        target = self._target(url)
        data = b"%s%sContent-Length: %d\r\n\r\n%s" % (target.head, fixed_headers, len(body), body)
        connection = self._idle_connection(target.origin)
        if connection is not None:
            try:
                return await self._exchange(connection, target.origin, data)
            except ConnectionLost as lost:
                if not lost.answered_nothing:
                    raise
        return await self._exchange(await self._connect(target.origin), target.origin, data)

    async def close(self) -> None:
        for connection in list(self._open):
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
            connection.abandon()
        self._idle.clear()
        self._open.clear()

    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url)
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            self._targets[url] = target
        return target

    async def _exchange(self, connection: _Connection, origin: Origin, data: bytes) -> int:
        try:
            status = await connection.request(data)
        except BaseException:
            self._let_go(connection)  # a timeout or a failure: the connection is not used again
            raise
        if connection.reusable and not connection.closed:
            self._keep(origin, connection)
        else:
            self._let_go(connection)
        return status

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        found = None
        while idle and found is None:
            connection = idle.pop()
            if connection.idle_timer is not None:
                connection.idle_timer.cancel()
                connection.idle_timer = None
            if connection.closed:
                self._open.discard(connection)
            else:
                found = connection
        if idle is not None and not idle:
            del self._idle[origin]  # no entry kept for a receiver with nothing idle
        return found

    def _keep(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._idle_per_origin:
            self._let_go(connection)
            return
        idle.append(connection)
        connection.idle_timer = asyncio.get_running_loop().call_later(
            self._keep_alive, self._expire, origin, connection
        )

    def _expire(self, origin: Origin, connection: _Connection) -> None:
        connection.idle_timer = None
        idle = self._idle.get(origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            if not idle:
                del self._idle[origin]
        self._let_go(connection)

    def _let_go(self, connection: _Connection) -> None:
        """Closes the connection (if it is not already) and forgets it."""
        connection.abandon()
        self._open.discard(connection)

    async def _connect(self, origin: Origin) -> _Connection:
        """A new connection to the first of the host's checked addresses that takes it."""
        addresses = await ssrf.checked_addresses(origin.host, origin.port, self._allowed)
        loop = asyncio.get_running_loop()
        failures = []
        for address in addresses:
            try:
                if origin.scheme == "https":
                    _, connection = await loop.create_connection(
                        _Connection, str(address), origin.port, ssl=self._tls, server_hostname=origin.host
                    )
                else:
                    _, connection = await loop.create_connection(_Connection, str(address), origin.port)
            except (OSError, ssl.SSLError) as error:
                failures.append(f"{address}: {_reason(error)}")
                continue
            self._open.add(connection)
            return connection
        raise ConnectError(f"cannot connect to {origin.host}:{origin.port} ({'; '.join(failures)})")


def _reason(error: OSError) -> str:
    """Why a connection failed, in words: the system's for an errno (uvloop's own text only
    repeats the address), the TLS library's for a certificate or handshake failure."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {error.verify_message}"
    if error.errno and not isinstance(error, ssl.SSLError):
        return os.strerror(error.errno)
    return str(error) or type(error).__name__
