"""A closed-loop sender: N requests over a fixed number of keep-alive connections, one in flight each.

Each lane takes the next request as soon as its previous answer is in, so `in_flight` requests
are outstanding at any time until the N are sent, which is how the Jasmin comparison is defined
("N messages, 32 in flight"). Answers may carry a Content-Length or be chunked (Jasmin's Twisted
web server chunks its /send answers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Sent:
    started: float = 0.0  # wall clock of the first send (the clock the receivers stamp with)
    seconds: float = 0.0  # from the first send to the last answer
    accepted: list[str] = field(default_factory=list)  # the ids the gateway answered with
    refused: list[str] = field(default_factory=list)  # up to a few refusals, for the notes
    refusals: int = 0


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(request)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The server closed an idle keep-alive connection before this request reached it.
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")  # the empty trailer
        else:
            body = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def closed_loop(
    host: str,
    port: int,
    request: bytes,
    total: int,
    in_flight: int,
    accepted_id: Callable[[int, bytes], str | None],
) -> Sent:
    """Sends `request` `total` times, `in_flight` at a time; `accepted_id(status, body)` returns
    the gateway's id for an accepted message, None for a refusal."""
    sent = Sent()
    cursor = iter(range(total))

    async def lane() -> None:
        connection = _Connection(host, port)
        try:
            for _ in cursor:
                status, body = await connection.exchange(request)
                message_id = accepted_id(status, body)
                if message_id is None:
                    sent.refusals += 1
                    if len(sent.refused) < 3:
                        sent.refused.append(f"{status} {body[:200]!r}")
                else:
                    sent.accepted.append(message_id)
        finally:
            connection.close()

    sent.started = time.time()
    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    sent.seconds = time.perf_counter() - began
    return sent


def http_post(
    host: str, port: int, path: str, body: bytes, content_type: str, authorization: str = ""
) -> bytes:
    """One HTTP/1.1 keep-alive POST, as bytes to send again and again."""
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
