"""Connection-level limits in front of the ASGI app, as a subclass of uvicorn's httptools protocol.

uvicorn closes idle keep-alive connections itself (`timeout_keep_alive`), but with httptools it sets
no deadline for a request's head or body, no limit on the size or number of header lines, and its
`limit_concurrency` keeps an over-limit connection open to answer it a plain-text 503. Without
these, a client that trickles its headers or body, or connects and says nothing, holds a file
descriptor for as long as it likes. This protocol adds:

- a head deadline: a request's line and headers must all arrive within `head_timeout` of the
  connection opening (a silent connection is closed then) or of the request's first byte;
- a body deadline: the body must all arrive within `body_timeout` of the head; a body the app
  refused early (413) is read and discarded meanwhile, so a client that writes its whole body
  before reading, as Python `requests` does, still reads the answer instead of a reset;
- `max_header_bytes` for the request line and headers together, `max_headers` header lines;
- `max_connections` open at once in this process, shared by every listener, HTTPS connections
  counted from their accept: the loop hands a connection to this protocol only once its TLS
  handshake is done (within `tls_handshake_timeout`, which cli/serve.py gives the loop), but it
  makes the protocol on accept, so a handshake is counted from there until it ends, or until its
  deadline if it fails (the loop then tells the protocol nothing).

Refusals are RFC 7807 problems with `Connection: close`: 408, 431, and 503 for a connection over
the budget, which is closed at once instead of waiting for its request.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tidings.api.problems import PROBLEM_JSON, generic_problem, problem_body
from tidings.config import Settings


@dataclass
class FrontDoorLimits:
    head_timeout: float
    body_timeout: float
    tls_handshake_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    open_connections: int = field(default=0, init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> FrontDoorLimits:
        return cls(
            head_timeout=settings.http_head_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
            tls_handshake_timeout=settings.http_tls_handshake_timeout_seconds,
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            max_connections=settings.http_max_connections,
        )


def guarded_protocol(limits: FrontDoorLimits) -> type[GuardedHttpProtocol]:
    """A protocol class bound to `limits`; every listener given the same class shares its budget."""
    return type("BoundGuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was just refused."""


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[FrontDoorLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted = False
        self._refused = False
        self._awaiting_head = True  # between requests too: the next byte starts a head
        self._head_bytes = 0
        self._header_lines = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._handshake: asyncio.TimerHandle | None = None
        if self.config.is_ssl:  # made on accept, before the TLS handshake: it holds a place now
            self.limits.open_connections += 1
            self._handshake = self.loop.call_later(self.limits.tls_handshake_timeout, self._handshake_ended)

    # --- the connection ---------------------------------------------------------------------

    def _handshake_ended(self) -> None:
        """Its place back: the handshake succeeded (it is counted as a connection now), or its
        deadline passed, when the loop closes it if it has not already failed and been closed."""
        if self._handshake is not None:
            self._handshake.cancel()
            self._handshake = None
            self.limits.open_connections -= 1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._handshake_ended()
        super().connection_made(transport)
        if self.limits.open_connections >= self.limits.max_connections:
            self._refuse(503, "This server holds as many connections as it may; try again shortly.")
            return
        self.limits.open_connections += 1
        self._counted = True
        self._arm(self.limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self.limits.open_connections -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head counted and deadlines kept, and refusals answered by us."""
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            if self._deadline is None:  # the first byte of a request after a keep-alive pause
                self._arm(self.limits.head_timeout)
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:  # a callback of ours stopped the parser and has answered already
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # Bytes of a head that has not ended yet sit in the parser's buffers: stop them growing.
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(
                431, f"The request line and headers must not exceed {self.limits.max_header_bytes} bytes."
            )

    # --- parser callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > self.limits.max_headers:
            self._refuse(431, f"A request may carry at most {self.limits.max_headers} header lines.")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        head_size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head_size > self.limits.max_header_bytes:
            self._refuse(
                431, f"The request line and headers must not exceed {self.limits.max_header_bytes} bytes."
            )
            raise _Refused
        self._awaiting_head = False
        self._head_bytes = 0
        self._header_lines = 0
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._awaiting_head = True
        super().on_message_complete()

    # --- deadlines and refusals -------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._awaiting_head:
            if self._head_bytes:
                self._refuse(408, "The request line and headers did not arrive in time.")
            else:
                self.transport.close()  # silent since it connected: nobody to answer
        elif cycle is not None and not cycle.response_started:
            # The app may be waiting for the rest of the body: it now reads a disconnect, and
            # anything it still sends goes nowhere, so our 408 is the only answer on the wire.
            cycle.disconnected = True
            cycle.message_event.set()
            self._refuse(408, "The request body did not arrive in time.")
        else:
            # Answered already (a 413 while the body was being discarded) or answering: nothing
            # may follow that answer on this connection.
            self.transport.close()

    def _refuse(self, status: int, detail: str) -> None:
        self._refused = True
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not (cycle.response_complete or cycle.disconnected):
            # A pipelined request is still being answered: ours would interleave with that answer.
            self.transport.close()
            return
        body = json.dumps(problem_body(generic_problem(status, detail))).encode()
        lines = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            lines.append(name + b": " + value + b"\r\n")
        lines += [
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(lines))
        self.transport.close()
