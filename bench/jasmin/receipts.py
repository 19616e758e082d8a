"""The receiver of Jasmin's delivery-receipt callbacks (its `dlr-url`), run as a process of its own.

Jasmin's DLR thrower calls the message's `dlr-url` with form fields (`id`, `level`,
`message_status`, ...), in the body for POST or in the query for GET, and retries unless the body
of the answer is exactly `ACK/Jasmin`. This answers every call that way and notes when each
`DELIVRD` receipt of level 2 or 3 (the terminal's, from the SMSC's deliver_sm) arrived, on the
wall clock, once per message id. It prints `ready` when listening, one JSON line when `--expect`
distinct ids have been delivered, and one JSON summary on SIGTERM. Like bench/webhook_sink.py it
speaks only the HTTP/1.1 it needs, to leave the cores to the gateway under test.

    python -m bench.jasmin.receipts --port 9001 --expect 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any
from urllib.parse import parse_qs

from bench.tiny_http import TinyHttpProtocol

_ACK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nACK/Jasmin"


class Tally:
    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.delivered: dict[str, float] = {}
        self.calls = 0
        self.others = 0  # calls that are not a level-2/3 DELIVRD receipt (level 1 ACKs, failures)
        self.announced = False

    def note(self, fields: dict[str, list[str]]) -> None:
        arrived = time.time()
        self.calls += 1
        message_id = (fields.get("id") or [""])[0]
        level = (fields.get("level") or [""])[0]
        status = (fields.get("message_status") or [""])[0]
        if level in ("2", "3") and status == "DELIVRD" and message_id:
            self.delivered.setdefault(message_id, arrived)
        else:
            self.others += 1
        if not self.announced and len(self.delivered) >= self.expect:
            self.announced = True
            print(json.dumps(self.summary()), flush=True)

    def summary(self) -> dict[str, Any]:
        times = self.delivered.values()
        return {
            "delivered": len(self.delivered),
            "calls": self.calls,
            "others": self.others,
            "first": min(times, default=None),
            "last": max(times, default=None),
        }


class Receiver(TinyHttpProtocol):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally

    def answer(self, target: str, headers: dict[str, str], body: bytes) -> bytes:
        self._tally.note(parse_qs(body.decode("utf-8", "replace") or target.partition("?")[2]))
        return _ACK


async def serve(port: int, expect: int) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally(expect)
    server = await loop.create_server(lambda: Receiver(tally), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    print(json.dumps(tally.summary()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True, help="delivered ids to announce")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.expect))


if __name__ == "__main__":
    main()
