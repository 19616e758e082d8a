"""The two sides of the comparison, each measured the same way: N messages, a fixed number in
flight, from the first send to the last `delivered` callback.

- Tidings: `tidings serve --role all` on SQLite, as shipped, with the simulator answering at once
  (delivery delay 0), started and fed to a webhook receiver exactly as `bench.sustained` does
  (its `deployment` and `sink`); messages go to POST /v1/messages with Basic auth.
- Jasmin: its daemons (bench/jasmin/gateway.py) delivering over SMPP v3.4 to the local Node SMSC
  (bench/jasmin/smsc.js); messages go to its HTTP API's /send with `dlr-level=2` and a `dlr-url`
  on bench/jasmin/receipts.py.
"""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import sustained, targets
from bench.jasmin import gateway
from bench.jasmin.load import Sent, closed_loop, http_post

TEXT = "Hello from the benchmark"


@dataclass
class Result:
    setup: str
    messages: int
    in_flight: int
    sent: Sent = field(default_factory=Sent)
    delivered: int = 0
    last_delivery: float | None = None  # wall clock of the last delivered callback
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.delivered == self.messages and self.sent.refusals == 0

    @property
    def seconds(self) -> float | None:
        if self.last_delivery is None:
            return None
        return self.last_delivery - self.sent.started

    @property
    def per_second(self) -> float | None:
        seconds = self.seconds
        return self.delivered / seconds if seconds else None


def _run(coroutine: Coroutine[Any, Any, Sent]) -> Sent:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(coroutine)


# --- Tidings -------------------------------------------------------------------------------------


def measure_tidings(messages: int, in_flight: int, timeout_s: float) -> Result:
    result = Result("tidings sqlite-all", messages, in_flight)
    topology = sustained.TOPOLOGIES["sqlite-all"]
    with tempfile.TemporaryDirectory(prefix="tidings-vs-jasmin-") as tmp:
        workdir = Path(tmp)
        with sustained.deployment(topology, workdir, "", {}) as deployed:
            with sustained.sink(deployed, workdir) as (out, sink_process):
                host, api_port = deployed.api_url.split("://", 1)[1].split("/", 1)[0].split(":")
                body = json.dumps(
                    {
                        "channel": "sms",
                        "message_type": "text",
                        "to": "447700900000",
                        "from": "Acme",
                        "text": TEXT,
                    }
                ).encode()
                request = http_post(
                    host, int(api_port), "/v1/messages", body, "application/json", deployed.authorization
                )

                def accepted(status: int, answer: bytes) -> str | None:
                    return str(json.loads(answer)["message_uuid"]) if status == 202 else None

                result.sent = _run(closed_loop(host, int(api_port), request, messages, in_flight, accepted))
                # Every delivery and webhook is a job: once none is queued, every webhook was posted.
                deadline = time.monotonic() + timeout_s
                while deployed.queued() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if deployed.queued():
                    result.notes.append(f"{deployed.queued()} jobs still queued after {timeout_s:.0f} s")
                sink_process.terminate()
                sink_process.wait(timeout=30)
            ours = set(result.sent.accepted)
            delivered: dict[str, float] = {}
            for line in out.read_text().splitlines():
                arrived, message_uuid, status, signed = json.loads(line)
                if status == "delivered" and message_uuid in ours and signed:
                    delivered.setdefault(message_uuid, arrived)
            result.delivered = len(delivered)
            result.last_delivery = max(delivered.values(), default=None)
    return result


# --- Jasmin --------------------------------------------------------------------------------------


def _receiver(port: int, expect: int) -> tuple[subprocess.Popen[str], queue.Queue[str], threading.Thread]:
    command = [sys.executable, "-m", "bench.jasmin.receipts", "--port", str(port), "--expect", str(expect)]
    process = subprocess.Popen(command, cwd=targets.REPO, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.strip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if lines.get(timeout=30) != "ready":
        raise RuntimeError("the receipt receiver did not start")
    return process, lines, reader


def measure_jasmin(tuning: gateway.Tuning, messages: int, in_flight: int, timeout_s: float) -> Result:
    result = Result(tuning.name, messages, in_flight)
    with tempfile.TemporaryDirectory(prefix="jasmin-bench-") as tmp:
        workdir = Path(tmp)
        with gateway.smsc(workdir) as (smsc_port, _):
            with gateway.jasmin(workdir, smsc_port, tuning) as jasmin:
                receiver_port = targets.free_port()
                receiver, lines, reader = _receiver(receiver_port, messages)
                try:
                    form = {
                        "username": gateway.USERNAME,
                        "password": gateway.PASSWORD,
                        "to": "447700900000",
                        "from": "Acme",
                        "content": TEXT,
                        "dlr": "yes",
                        "dlr-url": f"http://127.0.0.1:{receiver_port}/dlr",
                        "dlr-level": "2",
                        "dlr-method": "POST",
                    }
                    request = http_post(
                        "127.0.0.1",
                        jasmin.http_port,
                        "/send",
                        urlencode(form).encode(),
                        "application/x-www-form-urlencoded",
                    )

                    def accepted(status: int, answer: bytes) -> str | None:
                        text = answer.decode("utf-8", "replace")
                        return text.split('"')[1] if status == 200 and text.startswith("Success") else None

                    result.sent = _run(
                        closed_loop("127.0.0.1", jasmin.http_port, request, messages, in_flight, accepted)
                    )
                    summary = None
                    deadline = time.monotonic() + timeout_s
                    while summary is None and time.monotonic() < deadline:
                        with_time = max(0.1, deadline - time.monotonic())
                        try:
                            summary = json.loads(lines.get(timeout=with_time))
                        except queue.Empty:
                            break
                    receiver.terminate()
                    receiver.wait(timeout=30)
                    reader.join(timeout=10)
                    if summary is None:  # not all arrived: take the receiver's final count
                        while not lines.empty():
                            summary = json.loads(lines.get())
                        result.notes.append(f"not every receipt arrived within {timeout_s:.0f} s")
                finally:
                    if receiver.poll() is None:
                        receiver.terminate()
                        receiver.wait(timeout=30)
                if summary:
                    result.delivered = int(summary["delivered"])
                    result.last_delivery = summary["last"]
                    if summary["others"]:
                        result.notes.append(f"{summary['others']} callbacks other than a DELIVRD receipt")
                logs = targets.REPO / "bench" / "results" / "jasmin-logs" / tuning.name.replace(" ", "-")
                shutil.rmtree(logs, ignore_errors=True)
                shutil.copytree(jasmin.workdir / "log", logs)
                shutil.copy(workdir / "smsc.log", logs / "smsc.log")
                result.notes.append(f"Jasmin's logs: {logs.relative_to(targets.REPO)}")
                result.notes.extend(_log_findings(jasmin))
    return result


def _log_findings(jasmin: gateway.Jasmin) -> list[str]:
    """What Jasmin's logs say went wrong: receipts looked up again because they arrived before
    their submit_sm_resp's mapping was stored, receipts dropped, other errors."""
    lookups = jasmin.log_tail("dlrlookupd-messages.log", 1_000_000).splitlines()
    retried = sum(1 for line in lookups if "DLRMapNotFound" in line and "(retrials:" in line)
    dropped = sum(1 for line in lookups if "(final)" in line)
    errors = sum(1 for line in jasmin.log_tail("messages.log", 1_000_000).splitlines() if " ERROR " in line)
    findings = []
    if retried:
        findings.append(f"{retried} receipt lookups retried (receipt before its submit_sm_resp mapping)")
    if dropped:
        findings.append(f"{dropped} receipts dropped after their last lookup")
    if errors:
        findings.append(f"{errors} ERROR lines in Jasmin's messages.log")
    return findings
