"""Driving wrk (Debian package `wrk`) with bench/post.lua and reading its numbers back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("post.lua")
_MARKER = "BENCH_RESULT "


class WrkMissing(RuntimeError):
    pass


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(
            "wrk is not installed. It is the load generator, from Debian's package `wrk`:\n"
            "    apt-get update && apt-get install -y wrk"
        )
    return path


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "?"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int  # responses with status >= 400, as wrk counts them
    timeouts: int
    non_202: int | None  # exact count, only when the response() hook was on
    latency_us: dict[str, float]
    raw_output: str
    tokens_used: int | None = None  # JWT runs: tokens taken from the pool
    tokens_exhausted: int | None = None  # JWT runs: requests sent without a token (401s)
    tokens_next: int | None = None  # JWT runs: first pool line no thread took, relative to the start

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    @property
    def failed_responses(self) -> int:
        return self.non_202 if self.non_202 is not None else self.status_errors

    @property
    def errors(self) -> int:
        return self.failed_responses + self.socket_errors

    @property
    def accepted(self) -> int:
        """Responses wrk counted as successful (202, or any status < 400 without the hook)."""
        return self.requests - self.failed_responses

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "accepted": self.accepted,
            "errors": {
                "total": self.errors,
                "status": self.status_errors,
                "non_202": self.non_202,
                "connect": self.connect_errors,
                "read": self.read_errors,
                "write": self.write_errors,
                "timeout": self.timeouts,
            },
            "latency_ms": {name: round(value / 1000, 3) for name, value in self.latency_us.items()},
        }


def run_wrk(
    wrk: str,
    url: str,
    *,
    authorization: str,
    connections: int,
    threads: int,
    duration_s: float,
    count_status: bool,
    timeout_s: float = 10.0,
    tokens_file: Path | None = None,
    tokens_start: int = 0,
    bodies_file: Path | None = None,
) -> WrkResult:
    """One wrk run. With `tokens_file`, every request carries the next unused Bearer token from
    that file, from line `tokens_start` on (bench/post.lua), instead of `authorization`."""
    threads = max(1, min(threads, connections))
    env = {
        **os.environ,
        "BENCH_AUTHORIZATION": authorization,
        "BENCH_COUNT_STATUS": "1" if count_status else "0",
        "BENCH_TOKENS_FILE": str(tokens_file) if tokens_file else "",
        "BENCH_TOKENS_START": str(tokens_start),
        "BENCH_THREADS": str(threads),
        "BENCH_BODIES_FILE": str(bodies_file) if bodies_file else "",
    }
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        f"--timeout={round(timeout_s)}s",
        "--latency",
        f"--script={SCRIPT}",
        url,
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=duration_s + timeout_s + 30
    )
    output = done.stdout + done.stderr
    line = next((line for line in output.splitlines() if line.startswith(_MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{output}")
    data = json.loads(line[len(_MARKER) :])

    def token_count(name: str) -> int | None:
        value = data.get(name, -1)
        return int(value) if tokens_file and value >= 0 else None

    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        connect_errors=int(data["connect_errors"]),
        read_errors=int(data["read_errors"]),
        write_errors=int(data["write_errors"]),
        status_errors=int(data["status_errors"]),
        timeouts=int(data["timeouts"]),
        non_202=int(data["non_202"]) if data["non_202"] >= 0 else None,
        latency_us={name: float(value) for name, value in data["latency_us"].items()},
        raw_output=output,
        tokens_used=token_count("tokens_used"),
        tokens_exhausted=token_count("tokens_exhausted"),
        tokens_next=token_count("tokens_next"),
    )
