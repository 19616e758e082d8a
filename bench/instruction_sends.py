"""The program `bench.accept_instructions` runs under valgrind: warm up, then send N messages
through the whole app in process, 32 at a time, as `bench.accept_cost`'s whole-app row does.

It imports nothing of `bench`, only Tidings' public pieces, so that it can run against another
checkout's `tidings` (PYTHONPATH) for an A/B comparison: run as a file, not as a module.
`bench.accept_cost` takes its request from here.

    python bench/instruction_sends.py --sends N --backend postgresql|sqlite [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from tidings.api.app import create_app
from tidings.config import Settings
from tidings.logs import configure_logging
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account
from tidings.store.migrate import upgrade

BODY = b'{"channel":"sms","message_type":"text","to":"447700900000","from":"Acme","text":"Hello there"}'
CONCURRENCY = 32
WARM_UP = 4  # sends per task before the counted ones: caches, prepared statements, imports


def send_headers(authorization: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", authorization),
        (b"content-length", str(len(BODY)).encode()),
    ]


def send_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of one `POST /v1/messages`, as uvicorn would hand it over."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _send(database_url: str, home: Path, sends: int, log_sink: TextIO) -> None:
    await upgrade(database_url)
    # A long authentication cache: under valgrind a run lasts minutes, and a second verification
    # of the secret (argon2) would be counted as the sends' cost.
    settings = Settings(
        home=home, database_url=database_url, auto_migrate=False, log_format="json", auth_cache_seconds=86400
    )
    # Every send writes its access line as the server does, through the same handler, into a sink.
    with contextlib.redirect_stderr(log_sink):
        configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    try:
        credentials = await create_account(runtime.database, runtime.box, name="instructions")
        secret = f"{credentials.api_key}:{credentials.api_secret}".encode()
        authorization = ("Basic " + base64.b64encode(secret).decode()).encode()
        app = create_app(runtime)
        headers = send_headers(authorization)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": BODY, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 202:
                raise RuntimeError(f"the app answered {message['status']}")

        async def sender(count: int) -> None:
            for _ in range(count):
                await app(send_scope(headers), receive, send)

        await asyncio.gather(*(sender(WARM_UP) for _ in range(CONCURRENCY)))
        await asyncio.gather(*(sender(sends // CONCURRENCY) for _ in range(CONCURRENCY)))
    finally:
        await runtime.stop()


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, required=True, help="a multiple of 32")
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    import uvloop  # the loop `tidings serve` runs

    with (
        tempfile.TemporaryDirectory(prefix="tidings-instructions-") as workdir,
        open(os.devnull, "w") as log_sink,
    ):
        home = Path(workdir)
        if args.backend == "sqlite":
            uvloop.run(_send(f"sqlite+aiosqlite:///{home / 'tidings.db'}", home, args.sends, log_sink))
            return 0
        name = f"tidings_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(args.postgres_url, f'CREATE DATABASE "{name}"'))
        try:
            server = args.postgres_url.rsplit("/", 1)[0].split("://", 1)[1]
            uvloop.run(_send(f"postgresql+asyncpg://{server}/{name}", home, args.sends, log_sink))
        finally:
            asyncio.run(_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
