"""Just enough HTTP/1.1 for the benchmarks' receivers: keep-alive requests with a Content-Length.

A receiver runs beside the server under test on a two-core machine, where a web framework's CPU
would be taken from the server being measured; these receivers only count what arrives.
"""

from __future__ import annotations

import asyncio
from typing import Any


class TinyHttpProtocol(asyncio.Protocol):
    """Parses each request on a connection and writes back what `answer` returns."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (head_end := self._buffer.find(b"\r\n\r\n")) >= 0:
            lines = self._buffer[:head_end].decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            end = head_end + 4 + int(headers.get("content-length", "0"))
            if len(self._buffer) < end:
                return
            request_line = lines[0].split(" ", 2)
            target = request_line[1] if len(request_line) > 1 else ""
            body = self._buffer[head_end + 4 : end]
            self._buffer = self._buffer[end:]
            self._transport.write(self.answer(target, headers, body))

    def answer(self, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """The whole response to one request (`headers` keyed in lower case)."""
        raise NotImplementedError
