"""`python -m bench.sustained`: the whole trip under a steady load, 202 → signed `delivered` webhook.

For each setup (SQLite role all, as shipped; PostgreSQL with one API process and one or two worker
processes) and each offered rate, on fresh data: Tidings runs with the simulator answering at once
(delivery delay 0), its account's status webhooks go to a local receiver (bench/webhook_sink.py),
and an open-loop generator sends SMS at the fixed rate for `--duration` seconds, whatever the
answers' latency. Per row: accepted/s, the lag from each 202 to its `delivered` webhook (p50, p95,
p99), the queue depth when the load stops, and how many accepted messages never got a signed
`delivered` webhook (lost) once the queue drained. A rate is sustainable when p95 < 1 s and
less than a second's worth of work is queued when the load stops. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import cpu, targets
from bench.cpu_cap import CpuCap

SETUPS = ("sqlite-all", "pg-1api-1worker", "pg-1api-2workers")  # see TOPOLOGIES
RATES = (50, 100, 200, 400, 800)
MAX_CONNECTIONS = 256
_QUEUED = "SELECT count(*) FROM jobs WHERE state IN ('pending', 'leased')"


@dataclass
class Row:
    setup: str
    offered: int
    sent: int = 0
    accepted: int = 0
    accept_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)
    accept_latencies: list[float] = field(default_factory=list)
    queued_at_end: int = 0
    delivered_per_second: float = 0.0  # delivered webhooks that arrived while the load ran
    lost: int = 0
    unsigned: int = 0
    drained: bool = True
    cpu: cpu.Use | None = None  # while the load ran

    def percentile(self, p: float) -> float | None:
        return _percentile(self.lags, p)

    @property
    def accept_p95_ms(self) -> float | None:
        p95 = _percentile(self.accept_latencies, 95)
        return None if p95 is None else p95 * 1000

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.accept_seconds if self.accept_seconds else 0.0

    @property
    def sustainable(self) -> bool:
        p95 = self.percentile(95)
        return (
            p95 is not None
            and p95 < 1.0
            and self.queued_at_end < self.offered
            and self.lost == 0
            and self.accepted >= 0.98 * self.sent
        )


# --- the servers ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    api_urls: list[str]
    authorization: str
    api_key: str
    signature_secret: str
    env: dict[str, str]
    query: Callable[[str], int]  # a count, by SQL
    processes: list[subprocess.Popen[bytes]]
    workdir: Path
    worker_cap: CpuCap | None = None  # each worker held to this share of the CPU (bench/cpu_cap.py)
    workers: list[Path] = field(default_factory=list)  # the workers' logs

    @property
    def api_url(self) -> str:
        return self.api_urls[0]

    def queued(self) -> int:
        return self.query(_QUEUED)

    def start_worker(self, index: int) -> None:
        worker = _serve(self.env, self.workdir, "worker", f"worker{index}")[0]
        self.processes.append(worker)
        self.workers.append(self.workdir / f"worker{index}.log")
        if self.worker_cap is not None:
            self.worker_cap.confine(worker.pid, f"worker{index}")

    def wait_workers_running(self, timeout: float = 60.0) -> None:
        """Until every worker started has logged that it runs: a load offered before would
        charge the workers' start-up (imports, connecting) to the first messages' lag."""
        deadline = time.monotonic() + timeout
        while not all(log.exists() and "Tidings worker running" in log.read_text() for log in self.workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {timeout:g}s (see their logs)")
            time.sleep(0.2)


def _credentials(env: dict[str, str], cwd: Path) -> dict[str, str]:
    output = targets._tidings_cli(["accounts", "create", "--name", "bench", "--json"], env, cwd)
    line = [line for line in output.splitlines() if line.startswith("{")][-1]
    credentials: dict[str, str] = json.loads(line)
    return credentials


def _serve(env: dict[str, str], workdir: Path, role: str, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = targets.free_port()
    command = [*targets.TIDINGS, "serve", "--host", "127.0.0.1", "--port", str(port), "--role", role]
    return targets._start(command, env, workdir / f"{name}.log", workdir), port


@dataclass(frozen=True)
class Topology:
    """Which processes serve: on SQLite one `--role all` process; on PostgreSQL `api_processes`
    `--role api` processes and `workers` `--role worker` processes."""

    postgresql: bool
    api_processes: int = 1
    workers: int = 0


TOPOLOGIES = {
    "sqlite-all": Topology(postgresql=False),
    "pg-1api-1worker": Topology(postgresql=True, workers=1),
    "pg-1api-2workers": Topology(postgresql=True, workers=2),
}


@contextlib.contextmanager
def deployment(
    topology: Topology,
    workdir: Path,
    admin_url: str,
    extra_env: dict[str, str],
    *,
    worker_cores: float | None = None,
) -> Iterator[Deployment]:
    """`worker_cores`: hold each `--role worker` process to that many cores (bench/cpu_cap.py)."""
    worker_cap = CpuCap(worker_cores) if worker_cores else None
    database_name = None
    if topology.postgresql:
        database_name = f"tidings_sustained_{uuid.uuid4().hex[:10]}"
        targets._pg_admin(admin_url, f'CREATE DATABASE "{database_name}"')
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if database_name:
            plain = targets._with_database(admin_url, database_name)
            url = "postgresql+asyncpg://" + plain.split("://", 1)[1]
            env = targets._tidings_env(workdir / "home", url, 0.0, None) | extra_env

            def query(sql: str) -> int:
                return targets._pg_query(plain, sql)

        else:
            env = targets._tidings_env(workdir / "home", None, 0.0, None) | extra_env
            database = workdir / "home" / "tidings.db"

            def query(sql: str) -> int:
                import sqlite3

                with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
                    return int(conn.execute(sql).fetchone()[0])

        targets._tidings_cli(["db", "upgrade"], env, workdir)
        credentials = _credentials(env, workdir)
        token = base64.b64encode(f"{credentials['api_key']}:{credentials['api_secret']}".encode()).decode()
        role = "api" if topology.postgresql else "all"
        servers = []
        for index in range(topology.api_processes):
            api, port = _serve(env, workdir, role, f"api{index}")
            processes.append(api)
            servers.append(
                targets.Server("tidings", role, port, api, workdir / f"api{index}.log", f"Basic {token}")
            )
        deployed = Deployment(
            api_urls=[server.url for server in servers],
            authorization=f"Basic {token}",
            api_key=credentials["api_key"],
            signature_secret=credentials["signature_secret"],
            env=env,
            query=query,
            processes=processes,
            workdir=workdir,
            worker_cap=worker_cap,
        )
        for index in range(topology.workers):
            deployed.start_worker(index)
        for server in servers:
            targets._wait_ready(server)
        deployed.wait_workers_running()
        yield deployed
    finally:
        for process in processes:
            targets.Server("", "", 0, process, workdir / "x.log").stop()
        if worker_cap is not None:
            worker_cap.remove()
        if database_name:
            targets._pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')


@contextlib.contextmanager
def sink(deployed: Deployment, workdir: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A webhook receiver checking the deployment's signatures, made its account's status URL;
    yields the file it writes each webhook to and its process."""
    port = targets.free_port()
    out = workdir / "sink.jsonl"
    command = [
        sys.executable,
        "-m",
        "bench.webhook_sink",
        "--port",
        str(port),
        f"--secret={deployed.signature_secret}",  # a secret may begin with "-"
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, cwd=targets.REPO, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # "ready"
    try:
        targets._tidings_cli(
            ["accounts", "set-status-url", deployed.api_key, f"http://127.0.0.1:{port}/status"],
            deployed.env,
            workdir,
        )
        yield out, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


# --- the load ------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection that sends a POST and reads its answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)


@dataclass
class Offered:
    """What a steady load did: {message_uuid: when its 202 came}, how many requests were sent, how
    long sending took, and each 202's latency counted from when its request was due to be sent
    (so a server that falls behind is charged for the wait, not only for the answer)."""

    accepted: dict[str, float]
    sent: int
    seconds: float
    accept_latencies: list[float]


async def offer_load(api_url: str, authorization: str, rate: int, duration: float) -> Offered:
    """Sends at `rate` per second for `duration` seconds."""
    host_port = api_url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    body = json.dumps(
        {
            "channel": "sms",
            "message_type": "text",
            "to": "447700900000",
            "from": "Acme",
            "text": "Sustained load",
        }
    ).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {host_port}\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[Client] = []
    accepted: dict[str, float] = {}
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(due: float) -> None:
        async with slots:
            client = idle.pop() if idle else None
            try:
                if client is None:
                    raise ConnectionError("no idle connection")
                status, answer = await client.post(request)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The server closed an idle keep-alive connection before this request reached it.
                client = Client(*await asyncio.open_connection(host, int(port)))
                status, answer = await client.post(request)
            if status == 202:
                accepted[json.loads(answer)["message_uuid"]] = time.time()
                latencies.append(time.monotonic() - due)
            idle.append(client)

    total = int(rate * duration)
    started = time.monotonic()
    for index in range(total):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    for client in idle:
        client.writer.close()
    return Offered(accepted, total, elapsed, latencies)


def measure(setup: str, rate: int, args: argparse.Namespace) -> Row:
    row = Row(setup, rate)
    with tempfile.TemporaryDirectory(prefix="tidings-sustained-") as tmp:
        workdir = Path(tmp)
        with deployment(
            TOPOLOGIES[setup], workdir, args.postgres_url, {}, worker_cores=args.worker_cores
        ) as deployed:
            with sink(deployed, workdir) as (out, sink_process):
                pids = [process.pid for process in deployed.processes]
                before = cpu.sample(pids)
                offered = asyncio.run(
                    offer_load(deployed.api_url, deployed.authorization, rate, args.duration)
                )
                row.cpu = cpu.Use.between(before, cpu.sample(pids))
                accepted, seconds = offered.accepted, offered.seconds
                row.sent, row.accepted, row.accept_seconds = offered.sent, len(accepted), seconds
                row.accept_latencies = offered.accept_latencies
                row.queued_at_end = deployed.queued()
                deadline = time.monotonic() + args.drain
                while deployed.queued() and time.monotonic() < deadline:
                    time.sleep(0.5)
                row.drained = deployed.queued() == 0
                sink_process.terminate()
                sink_process.wait(timeout=30)
            delivered: dict[str, float] = {}
            for line in out.read_text().splitlines():
                arrived, message_uuid, status, signed = json.loads(line)
                if status == "delivered" and message_uuid in accepted:
                    if not signed:
                        row.unsigned += 1
                    delivered.setdefault(message_uuid, arrived)
            row.lags = [delivered[u] - at for u, at in accepted.items() if u in delivered]
            if accepted:
                load_began = min(accepted.values())
                during = [at for at in delivered.values() if at <= load_began + seconds]
                row.delivered_per_second = len(during) / seconds
            row.lost = sum(1 for u in accepted if u not in delivered)
    return row


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cores(use: cpu.Use | None) -> str:
    if use is None:
        return "- | - | -"
    postgres = f"{use.postgres:.2f}" if use.postgres else "-"
    return f"{use.tidings:.2f} | {postgres} | {use.machine:.2f} of {use.cores}"


def print_table(rows: list[Row], worker_cores: float | None = None) -> None:
    print()
    if worker_cores:
        print(f"each `--role worker` process held to {worker_cores} of a core (--worker-cores)")
    print(
        "| setup | offered/s | accepted/s | 202 p95 ms | delivered/s | lag p50 s | p95 s | p99 s | queued at end "
        "| lost | sustainable | cores: tidings | postgres | machine |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        lost = (
            f"{row.lost}"
            + ("" if row.drained else " (not drained)")
            + (f", {row.unsigned} unsigned" if row.unsigned else "")
        )
        print(
            f"| {row.setup} | {row.offered} | {row.accepted_per_second:.0f} | "
            f"{'-' if row.accept_p95_ms is None else f'{row.accept_p95_ms:.0f}'} | {row.delivered_per_second:.0f} | "
            f"{_fmt(row.percentile(50))} | "
            f"{_fmt(row.percentile(95))} | {_fmt(row.percentile(99))} | {row.queued_at_end} | {lost} | "
            f"{'yes' if row.sustainable else 'no'} | {_cores(row.cpu)} |"
        )
    print()
    best: dict[str, int] = {}
    for setup in dict.fromkeys(row.setup for row in rows):
        ok = [row.offered for row in rows if row.setup == setup and row.sustainable]
        if ok:
            best[setup] = max(ok)
        print(f"highest sustainable rate, {setup}: {max(ok) if ok else 'none of those tried'} msg/s")
    one, two = best.get("pg-1api-1worker"), best.get("pg-1api-2workers")
    if one and two:
        print(f"two workers / one worker, highest sustainable rates: {two / one:.2f}")
    capacity = {
        setup: max(row.delivered_per_second for row in rows if row.setup == setup)
        for setup in ("pg-1api-1worker", "pg-1api-2workers")
        if any(row.setup == setup for row in rows)
    }
    if len(capacity) == 2 and capacity["pg-1api-1worker"]:
        print(
            "two workers / one worker, most delivered/s at any rate: "
            f"{capacity['pg-1api-2workers'] / capacity['pg-1api-1worker']:.2f}"
        )
    saturated = [
        row
        for row in rows
        if row.setup == "pg-1api-2workers" and row.cpu and row.cpu.machine >= 0.95 * row.cpu.cores
    ]
    if saturated and not worker_cores:
        print(
            f"the machine's cores were all busy in {len(saturated)} two-worker row(s): there the ratio is the "
            "machine's; --worker-cores 0.25 measures how workers scale out (bench/README.md)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sustained", description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma list of {', '.join(SETUPS)}")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="offered messages/s, comma list")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per row (20)")
    parser.add_argument(
        "--drain", type=float, default=120, help="seconds to wait for the queue to drain (120)"
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--stop-after-unsustainable", action="store_true", help="skip higher rates once one fails"
    )
    parser.add_argument(
        "--worker-cores",
        type=float,
        help="hold each worker process to this many cores (bench/cpu_cap.py; needs root): "
        "how workers scale out, with the machine's cores out of the answer",
    )
    parser.add_argument("--output", type=Path, default=targets.REPO / "bench" / "results" / "sustained.json")
    args = parser.parse_args(argv)
    setups = [s for s in args.setups.split(",") if s]
    unknown = set(setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown setups: {', '.join(sorted(unknown))}")
    rates = [int(r) for r in args.rates.split(",") if r]
    rows: list[Row] = []
    for setup in setups:
        for rate in rates:
            row = measure(setup, rate, args)
            rows.append(row)
            print(
                f"{setup} {rate}/s: accepted {row.accepted_per_second:.0f}/s, p95 {_fmt(row.percentile(95))} s, "
                f"queued {row.queued_at_end}, lost {row.lost}",
                flush=True,
            )
            if args.stop_after_unsustainable and not row.sustainable:
                break
    print_table(rows, args.worker_cores)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            [
                {
                    "setup": r.setup,
                    "offered": r.offered,
                    "accepted_per_s": r.accepted_per_second,
                    "accept_p95_ms": r.accept_p95_ms,
                    "delivered_per_s": r.delivered_per_second,
                    "p50": r.percentile(50),
                    "p95": r.percentile(95),
                    "p99": r.percentile(99),
                    "queued_at_end": r.queued_at_end,
                    "lost": r.lost,
                    "drained": r.drained,
                    "mean_lag": statistics.fmean(r.lags) if r.lags else None,
                    "cores": dataclasses.asdict(r.cpu) if r.cpu else None,
                    "worker_cores": args.worker_cores,  # each worker's cap, or None
                }
                for r in rows
            ],
            indent=1,
        )
    )
    return 0 if all(row.lost == 0 and row.unsigned == 0 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
