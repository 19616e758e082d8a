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
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from starlette.types import ASGIApp

from tidings.api.app import create_app
from tidings.config import Settings
from tidings.logs import configure_logging
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account
from tidings.store.migrate import upgrade

BODY = b'{"channel":"sms","message_type":"text","to":"447700900000","from":"Acme","text":"Hello there"}'
CONCURRENCY = 32
WARM_UP = 4  # sends per task before the counted ones: caches, prepared statements, imports


def _send_headers(authorization: bytes) -> list[tuple[bytes, bytes]]:
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


async def receive_body() -> dict[str, Any]:
    """The ASGI `receive` of a send: its whole body at once."""
    return {"type": "http.request", "body": BODY, "more_body": False}


async def expect_202(message: MutableMapping[str, Any]) -> None:
    """The ASGI `send` of a send: anything but a 202 stops the run."""
    if message["type"] == "http.response.start" and message["status"] != 202:
        raise RuntimeError(f"the app answered {message['status']}")


@dataclass(frozen=True)
class SendRig:
    runtime: Runtime
    app: ASGIApp
    authorization: str  # an account's Basic credentials
    headers: list[tuple[bytes, bytes]]  # a send's, with those credentials


@contextlib.asynccontextmanager
async def send_rig(database_url: str, home: Path, log_sink: TextIO) -> AsyncIterator[SendRig]:
    """An API runtime on a migrated database, its app, and an account to send as."""
    await upgrade(database_url)
    # A long authentication cache: a run lasts minutes (under valgrind), and a second verification
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
        credentials = await create_account(runtime.database, runtime.box, name="bench")
        secret = f"{credentials.api_key}:{credentials.api_secret}".encode()
        authorization = "Basic " + base64.b64encode(secret).decode()
        yield SendRig(runtime, create_app(runtime), authorization, _send_headers(authorization.encode()))
    finally:
        await runtime.stop()


async def _send(database_url: str, home: Path, sends: int, log_sink: TextIO) -> None:
    async with send_rig(database_url, home, log_sink) as rig:

        async def sender(count: int) -> None:
            for _ in range(count):
                await rig.app(send_scope(rig.headers), receive_body, expect_202)

        await asyncio.gather(*(sender(WARM_UP) for _ in range(CONCURRENCY)))
        await asyncio.gather(*(sender(sends // CONCURRENCY) for _ in range(CONCURRENCY)))


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
