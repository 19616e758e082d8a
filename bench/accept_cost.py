"""`python -m bench.accept_cost`: what one send costs the API process, step by step, in process.

`bench.run` measures sends through a real server and wrk, where the machine's sharing of two
cores between them moves every figure by a third or more from run to run. This calls the app
itself, 32 sends at a time as wrk's connections would, against a fresh database of its own, on
the event loop the server runs (uvloop), and reads the process's own CPU time: what is left is
Tidings' cost, step by step, for ranking where a send's CPU goes.

Two kinds of row:
- **one call** (best of five runs of `--calls` calls): a step of the send path alone, with no
  concurrency around it.
- **32 at a time** (median of `--rounds` rounds of 32 times `--per` sends, the variants in turn in
  each round): the whole app as an ASGI call, the send endpoint alone (no ASGI layers in front),
  `submit` (the message's rows and the group commit), and a group-commit write carrying nothing
  (the hand-over, the batch, its round trips, the wake-up), so that the differences between them
  say what each layer adds; and a cached Basic authentication.

Not measured here: the HTTP server (parsing, the front door), which `bench.run` includes, and on
SQLite the writer process's share of each commit (a process of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO

from starlette.requests import Request

from bench import targets
from bench.instruction_sends import BODY, expect_202, receive_body, send_rig, send_scope
from tidings import strict_json
from tidings.api import messages_v1
from tidings.domain.ids import new_time_ordered_uuid
from tidings.domain.message import Message
from tidings.store.messages import message_row
from tidings.wire.messages_v1 import parse_send_request, to_message

CONCURRENCY = 32


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.accept_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the concurrent rows (5)")
    parser.add_argument("--per", type=int, default=100, help="sends per task in each round (100)")
    parser.add_argument("--calls", type=int, default=20000, help="calls per run of the one-call rows")
    return parser.parse_args(argv)


def _one_call(step: Callable[[], object], calls: int) -> float:
    """Microseconds a call, the best of five runs."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


async def _concurrent_cpu(send: Callable[[], Awaitable[None]], per: int) -> float:
    """Process CPU microseconds a send, CONCURRENCY tasks each sending `per` times."""

    async def sender() -> None:
        for _ in range(per):
            await send()

    started = time.process_time()
    await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (CONCURRENCY * per) * 1e6


async def _measure(
    args: argparse.Namespace, database_url: str, home: Path, log_sink: TextIO
) -> list[tuple[str, str, float]]:
    async with send_rig(database_url, home, log_sink) as rig:
        runtime, app, authorization = rig.runtime, rig.app, rig.authorization
        account = await runtime.authenticator.authenticate(authorization, "127.0.0.1")  # now cached
        # What the endpoint reads through request.app: the runtime, as FastAPI's app holds it.
        endpoint_app = SimpleNamespace(state=SimpleNamespace(runtime=runtime))

        def scope() -> dict[str, Any]:
            return {**send_scope(rig.headers), "app": endpoint_app}

        async def through_app() -> None:
            await app(scope(), receive_body, expect_202)

        async def endpoint_alone() -> None:
            response = await messages_v1.send_message(Request(scope(), receive_body))
            if response.status_code != 202:
                raise RuntimeError(f"the endpoint answered {response.status_code}: {response.body!r}")

        body = strict_json.loads(BODY)
        parsed = parse_send_request(body)

        def message() -> Message:
            return to_message(
                parsed,
                uuid=new_time_ordered_uuid(),
                account_id=account.api_key,
                application_id=None,
                created_at=datetime.now(UTC),
            )

        async def submit() -> None:
            await runtime.submitter.submit(message(), account)

        async def empty_write() -> None:
            await runtime.writer.write([])

        async def cached_authentication() -> None:
            await runtime.authenticator.authenticate(authorization, "127.0.0.1")

        sample = message()
        rows: list[tuple[str, str, float]] = [
            (
                "one call",
                "strict_json.loads (the body)",
                _one_call(lambda: strict_json.loads(BODY), args.calls),
            ),
            ("one call", "parse_send_request", _one_call(lambda: parse_send_request(body), args.calls)),
            ("one call", "to_message (with its id and clock)", _one_call(message, args.calls)),
            ("one call", "pricing.quote", _one_call(lambda: runtime.pricing.quote(sample), args.calls)),
            ("one call", "message_row", _one_call(lambda: message_row(sample), args.calls)),
        ]
        auth = await _concurrent_cpu(cached_authentication, args.per)
        rows.append(("32 at a time", "Basic authentication, cached", auth))
        variants: dict[str, Callable[[], Awaitable[None]]] = {
            "the whole app (ASGI)": through_app,
            "the send endpoint alone": endpoint_alone,
            "submit (rows + group commit)": submit,
            "a group-commit write of nothing": empty_write,
        }
        for variant in variants.values():
            await _concurrent_cpu(variant, max(1, args.per // 5))  # warm-up: caches, statements
        costs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, variant in variants.items():
                costs[name].append(await _concurrent_cpu(variant, args.per))
        rows.extend(("32 at a time", name, statistics.median(each)) for name, each in costs.items())
        return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    uvloop: Any
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency where it builds
        uvloop = None
    with (
        tempfile.TemporaryDirectory(prefix="tidings-accept-cost-") as workdir,
        open(os.devnull, "w") as log_sink,
    ):
        home = Path(workdir)
        if args.backend == "sqlite":
            url = f"sqlite+aiosqlite:///{home / 'tidings.db'}"
            rows = _run(_measure(args, url, home, log_sink), uvloop)
        else:
            name = f"tidings_bench_{uuid.uuid4().hex[:10]}"
            targets._pg_admin(args.postgres_url, f'CREATE DATABASE "{name}"')
            try:
                plain = targets._with_database(args.postgres_url, name)
                url = "postgresql+asyncpg://" + plain.split("://", 1)[1]
                rows = _run(_measure(args, url, home, log_sink), uvloop)
            finally:
                targets._pg_admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\nwhat a send costs the API process, {args.backend}, in process (no HTTP server)\n")
    print("| how | step | µs a send |")
    print("|---|---|---|")
    for how, step, micros in rows:
        print(f"| {how} | {step} | {micros:.1f} |")
    print(
        "\none call: wall time, best of five runs; 32 at a time: process CPU time, median of "
        f"{args.rounds} rounds (the rows in turn in each round)"
    )
    return 0


def _run(
    measuring: Coroutine[Any, Any, list[tuple[str, str, float]]], uvloop: Any
) -> list[tuple[str, str, float]]:
    """On uvloop, as `tidings serve` runs, where it is installed."""
    if uvloop is not None:
        rows: list[tuple[str, str, float]] = uvloop.run(measuring)
        return rows
    return asyncio.run(measuring)


if __name__ == "__main__":
    sys.exit(main())
