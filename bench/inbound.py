"""`python -m bench.inbound`: how fast messages come in, from the network to the inbound webhook.

`--messages` simulated inbound SMS (`POST /sim/inbound`, the way every connector hands a message
in: through the ingress), `--in-flight` at a time over keep-alive connections, to a number
linked to an application whose inbound webhook is a local receiver (bench/webhook_sink.py, which
checks every signature). Per setup: how long the accepts took, and the time from the first
POST to the last signed inbound webhook, as messages a second; then, on the same deployment and
as the baseline of the same run, as many sends (`POST /v1/messages`, accepts only).

    python -m bench.inbound                                   # both setups, 2,000 messages
    python -m bench.inbound --setups sqlite-all --messages 6000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.jasmin.load import Sent, closed_loop, http_post
from bench.sustained import TOPOLOGIES, Deployment, deployment, sink

SETUPS = ("sqlite-all", "pg-1api-1worker")
HANDSET = "447700900123"


@dataclass
class Row:
    setup: str
    messages: int
    inbound_accepts_per_second: float
    webhooks_per_second: float
    signed: int
    lost: int
    send_accepts_per_second: float


def _number_for_webhooks(deployed: Deployment, sink_url: str) -> str:
    """A number of the deployment's account, linked to an application that sends its inbound
    webhooks (v1) to the sink."""
    base = deployed.api_url.split("/v1/", 1)[0]
    webhooks = {
        "inbound_url": {"address": f"{sink_url}/inbound", "http_method": "POST"},
        "status_url": {"address": f"{sink_url}/status", "http_method": "POST"},
    }
    with httpx.Client(base_url=base, headers={"Authorization": deployed.authorization}, timeout=30) as client:
        created = client.post(
            "/v2/applications",
            json={
                "name": "bench inbound",
                "capabilities": {"messages": {"version": "v1", "webhooks": webhooks}},
            },
        )
        created.raise_for_status()
        found = client.get("/number/search", params={"country": "GB", "size": "1"})
        found.raise_for_status()
        msisdn = str(found.json()["numbers"][0]["msisdn"])
        for path, extra in (("/number/buy", {}), ("/number/update", {"app_id": created.json()["id"]})):
            answer = client.post(path, data={"country": "GB", "msisdn": msisdn, **extra})
            answer.raise_for_status()
    return msisdn


def _accepted_uuid(status: int, body: bytes) -> str | None:
    return str(json.loads(body)["message_uuid"]) if status == 202 else None


def _closed_loop(
    deployed: Deployment, path: str, addresses: dict[str, str], args: argparse.Namespace
) -> Sent:
    """`args.messages` SMS POSTed to `path`, `args.in_flight` at a time."""
    host, port = deployed.api_url.split("://", 1)[1].split("/", 1)[0].split(":")
    body = json.dumps({"channel": "sms", "message_type": "text", "text": "hello", **addresses}).encode()
    request = http_post(host, int(port), path, body, "application/json", deployed.authorization)
    return asyncio.run(closed_loop(host, int(port), request, args.messages, args.in_flight, _accepted_uuid))


def measure(setup: str, args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory(prefix="tidings-inbound-") as scratch:
        workdir = Path(scratch)
        with (
            deployment(TOPOLOGIES[setup], workdir, args.postgres_url, {}) as deployed,
            sink(deployed, workdir) as (out, receiver),
        ):
            port = receiver.args[receiver.args.index("--port") + 1]
            msisdn = _number_for_webhooks(deployed, f"http://127.0.0.1:{port}")
            came_in = _closed_loop(deployed, "/sim/inbound", {"from": HANDSET, "to": msisdn}, args)
            deadline = time.monotonic() + args.drain
            while deployed.queued() and time.monotonic() < deadline:
                time.sleep(0.2)
            went_out = _closed_loop(deployed, "/v1/messages", {"from": msisdn, "to": HANDSET}, args)
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(timeout=30)
            seen = [json.loads(line) for line in out.read_text().splitlines()]
    # The sink notes (arrived, message_uuid, status, signed); an inbound webhook has no status.
    webhooks = {uuid: (arrived, signed) for arrived, uuid, status, signed in seen if status == "None"}
    delivered = [webhooks[uuid] for uuid in came_in.accepted if uuid in webhooks]
    last = max((arrived for arrived, _ in delivered), default=came_in.started)
    return Row(
        setup,
        args.messages,
        len(came_in.accepted) / came_in.seconds,
        len(delivered) / (last - came_in.started) if delivered else 0.0,
        sum(1 for _, signed in delivered if signed),
        len(came_in.accepted) - len(delivered) + came_in.refusals,
        len(went_out.accepted) / went_out.seconds,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma list of {', '.join(SETUPS)}")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--drain", type=float, default=120, help="longest wait for the webhooks (120 s)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows = [measure(setup, args) for setup in args.setups.split(",")]
    print()
    print(
        "| setup | messages | inbound accepts/s | inbound webhooks/s | signed | lost | send accepts/s | inbound/send |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.setup} | {row.messages} | {row.inbound_accepts_per_second:,.0f} | {row.webhooks_per_second:,.0f} "
            f"| {row.signed} | {row.lost} | {row.send_accepts_per_second:,.0f} "
            f"| {row.inbound_accepts_per_second / row.send_accepts_per_second:.2f} |"
        )
    print()
    print(
        "inbound webhooks/s = signed inbound webhooks that reached the receiver / seconds from the first POST"
    )
    print(
        "lost = inbound messages refused, or accepted without a signed webhook once the queue drained (must be 0)"
    )
    return 1 if any(row.lost for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
