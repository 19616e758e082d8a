"""A lean webhook receiver for the sustained-load benchmark, run as a process of its own.

It answers every POST with 200 at once and notes, for each status webhook, when it arrived (wall
clock, the same clock the load generator stamps its 202s with), its message uuid and status, and
whether its signature verified (HS256 JWT over the exact body, with the payload hash). It speaks
just enough HTTP/1.1 (bench/tiny_http.py): a full web framework here would take CPU from the
server under test on a two-core machine. On SIGTERM it writes what it saw to
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

import jwt

from bench.tiny_http import TinyHttpProtocol

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Sink(TinyHttpProtocol):
    def __init__(self, secret: str, seen: list[tuple[float, str, str, bool]]) -> None:
        super().__init__()
        self._secret = secret
        self._seen = seen

    def answer(self, target: str, headers: dict[str, str], body: bytes) -> bytes:
        self._note(body, headers.get("authorization", "").removeprefix("Bearer ").strip())
        return _OK

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
