"""`python -m bench.webhook_client`: which HTTP client carries the webhook load.

The worker posts every status and inbound webhook; the client it posts with is part of the
delivery budget. This posts the same signed status bodies to the same local receiver
(bench/webhook_sink.py, a process of its own) at a fixed concurrency with httpx's AsyncClient,
aiohttp's ClientSession (Tidings' sender until it got a client of its own) and Tidings' sender
(tidings/webhooks/http_client.py), and prints posts/s, latency, the client's own CPU per post and
the ratio of each to httpx in the same run.

    python -m bench.webhook_client                  # 4000 posts each at 32 in flight
    python -m bench.webhook_client --posts 10000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from pathlib import Path

import aiohttp
import httpx

from bench import targets
from tidings.auth.webhook_signing import WebhookSigner
from tidings.webhooks.delivery import WebhookSender

SECRET = "bench-signature-secret-of-32-bytes!"
Post = Callable[[str, bytes, str], Awaitable[bool]]


def _body() -> bytes:
    return json.dumps(
        {
            "message_uuid": str(uuid.uuid4()),
            "to": "447700900000",
            "from": "Acme",
            "timestamp": "2026-11-28T12:00:00Z",
            "status": "delivered",
            "channel": "sms",
            "usage": {"currency": "EUR", "price": "0.0070"},
        }
    ).encode()


async def _drive(post: Post, url: str, posts: int, concurrency: int) -> dict[str, float]:
    bodies = [_body() for _ in range(posts)]
    signer = WebhookSigner(SECRET)
    tokens = [signer.sign(body, api_key="bench") for body in bodies]
    latencies: list[float] = []
    failed = 0
    cursor = iter(range(posts))

    async def lane() -> None:
        nonlocal failed
        for index in cursor:
            started = time.perf_counter()
            ok = await post(url, bodies[index], tokens[index])
            latencies.append(time.perf_counter() - started)
            failed += not ok

    started = time.perf_counter()
    cpu_started = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    ordered = sorted(latencies)
    return {
        "posts_per_second": posts / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
        "failed": failed,
        "cpu_us": cpu / posts * 1e6,
    }


async def _httpx(url: str, posts: int, concurrency: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def post(url: str, body: bytes, token: str) -> bool:
            response = await client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            return response.status_code == 200

        await _drive(post, url, min(posts, 200), concurrency)  # warm the connections
        return await _drive(post, url, posts, concurrency)


async def _aiohttp(url: str, posts: int, concurrency: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def post(url: str, body: bytes, token: str) -> bool:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                return response.status == 200

        await _drive(post, url, min(posts, 200), concurrency)
        return await _drive(post, url, posts, concurrency)


async def _tidings(url: str, posts: int, concurrency: int) -> dict[str, float]:
    sender = WebhookSender(
        timeout_seconds=10, allowed_networks=[ip_network("127.0.0.0/8")], idle_per_endpoint=concurrency
    )
    try:

        async def post(url: str, body: bytes, token: str) -> bool:
            return (await sender.send(url, body, token=token)).delivered

        await _drive(post, url, min(posts, 200), concurrency)
        return await _drive(post, url, posts, concurrency)
    finally:
        await sender.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000, help="posts per client (4000)")
    parser.add_argument("--concurrency", type=int, default=32, help="posts in flight (32)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    port = targets.free_port()
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
        command = [sys.executable, "-m", "bench.webhook_sink", "--port", str(port), f"--secret={SECRET}"]
        sink = subprocess.Popen(
            [*command, "--out", str(Path(tmp) / "sink.jsonl")],
            cwd=targets.REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            url = f"http://127.0.0.1:{port}/status"
            rows = {
                "httpx AsyncClient": asyncio.run(_httpx(url, args.posts, args.concurrency)),
                "aiohttp ClientSession": asyncio.run(_aiohttp(url, args.posts, args.concurrency)),
                "Tidings' sender": asyncio.run(_tidings(url, args.posts, args.concurrency)),
            }
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    baseline = rows["httpx AsyncClient"]["posts_per_second"]
    print(f"{args.posts} signed posts per client, {args.concurrency} in flight, to a local receiver\n")
    header = (
        f"{'client':<26}  {'posts/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'failed':>6}  {'CPU µs/post':>11}  "
        f"{'ratio vs httpx':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<26}  {row['posts_per_second']:>8.0f}  {row['p50_ms']:>7.2f}  {row['p99_ms']:>7.2f}  "
            f"{row['failed']:>6.0f}  {row['cpu_us']:>11.0f}  {row['posts_per_second'] / baseline:>14.2f}"
        )
    return 1 if any(row["failed"] for row in rows.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
