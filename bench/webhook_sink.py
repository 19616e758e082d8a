"""A lean webhook receiver for the sustained-load benchmark, run as a process of its own.

It answers every POST with 200 at once and notes, for each status webhook, when it arrived (wall
clock, the same clock the load generator stamps its 202s with), its message uuid and status, and
whether its signature verified (HS256 JWT over the exact body, with the payload hash). It speaks
just enough HTTP/1.1 for keep-alive POSTs with a Content-Length: a full web framework here would
take CPU from the server under test on a two-core machine. On SIGTERM it writes what it saw to
`--out` as JSON lines and exits.

    python -m bench.webhook_sink --port 9000 --secret SIGNATURE_SECRET --out sink.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import jwt

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Sink(asyncio.Protocol):
    def __init__(self, secret: str, seen: list[tuple[float, str, str, bool]]) -> None:
        self._secret = secret
        self._seen = seen
        self._buffer = b""
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end].decode("latin-1")
            length = 0
            token = ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                lowered = name.strip().lower()
                if lowered == "content-length":
                    length = int(value.strip())
                elif lowered == "authorization":
                    token = value.strip().removeprefix("Bearer ").strip()
            end = head_end + 4 + length
            if len(self._buffer) < end:
                return
            body = self._buffer[head_end + 4 : end]
            self._buffer = self._buffer[end:]
            self._note(body, token)
            self._transport.write(_OK)

    def _note(self, body: bytes, token: str) -> None:
        arrived = time.time()
        try:
            payload = json.loads(body)
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
            signed = claims.get("payload_hash") == hashlib.sha256(body).hexdigest()
        except (ValueError, jwt.PyJWTError):
            return
        self._seen.append((arrived, str(payload.get("message_uuid")), str(payload.get("status")), signed))


async def serve(port: int, secret: str, out: Path) -> None:
    loop = asyncio.get_running_loop()
    seen: list[tuple[float, str, str, bool]] = []
    server = await loop.create_server(lambda: Sink(secret, seen), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    with out.open("w") as file:
        for arrived, uuid, status, signed in seen:
            file.write(json.dumps([arrived, uuid, status, signed]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.secret, args.out))


if __name__ == "__main__":
    main()
