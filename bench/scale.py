"""`python -m bench.scale`: does Tidings grow with its processes, and hold up as its data grows?

Three measurements, each on fresh data, each a ratio against its own baseline in the same run:

- **api**: accepts/s of two `--role api` processes on one PostgreSQL database against one (the
  same total connections, split evenly; each process driven by its own wrk, as behind a balancer).
- **workers**: deliveries/s of 1, 2 and 4 `--role worker` processes. A backlog of `--backlog`
  SMS is accepted first with no worker running; then the workers start, and the rate is how many
  signed `delivered` webhooks reached a local receiver per second until the queue was empty.
  `--rounds N` runs every count N times, in turn, and shows each count's median.
- **stored**: accepts/s of one `--role api` process with `--stored` messages already in the
  database (ten million by default, spread over 90 days, as a busy account's history) against the
  same server empty, on SQLite and on PostgreSQL.

    python -m bench.scale                           # everything, about 25 minutes (seeding dominates)
    python -m bench.scale --parts api,workers       # without the ten million rows
    python -m bench.scale --parts stored --stored 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import cpu, targets
from bench.sustained import Deployment, Topology, deployment, offer_load, sink
from bench.wrk import WrkResult, find_wrk, run_wrk

PARTS = ("api", "workers", "stored")
WORKER_COUNTS = (1, 2, 4)
SEED_CHUNK = 1_000_000
_DELIVERED = "SELECT count(*) FROM messages WHERE status = 'delivered'"


@dataclass
class Row:
    part: str
    setup: str
    value: float  # per second
    unit: str
    note: str = ""
    ratio: float | None = None


def _accepts(deployed: Deployment, wrk: str, args: argparse.Namespace) -> tuple[float, int]:
    """Drives every API process of `deployed` at once, each with its share of the connections;
    returns the summed requests/s and the errors."""
    share = max(1, args.connections // len(deployed.api_urls))

    def drive(url: str, seconds: float) -> WrkResult:
        return run_wrk(
            wrk,
            url,
            authorization=deployed.authorization,
            connections=share,
            threads=1,
            duration_s=seconds,
            count_status=False,
        )

    with ThreadPoolExecutor(len(deployed.api_urls)) as pool:
        list(pool.map(lambda url: drive(url, args.warmup), deployed.api_urls))
        results = list(pool.map(lambda url: drive(url, args.duration), deployed.api_urls))
    return (
        sum(result.requests_per_second for result in results),
        sum(result.socket_errors + result.failed_responses for result in results),
    )


def measure_api(wrk: str, args: argparse.Namespace) -> list[Row]:
    rows = []
    for processes in (1, 2):
        with tempfile.TemporaryDirectory(prefix="tidings-scale-") as tmp:
            topology = Topology(postgresql=True, api_processes=processes)
            with deployment(topology, Path(tmp), args.postgres_url, {}) as deployed:
                rate, errors = _accepts(deployed, wrk, args)
        rows.append(
            Row("api", f"postgresql, {processes} api process(es)", rate, "accepts/s", f"errors {errors}")
        )
        print(f"api x{processes}: {rate:.0f} accepts/s", flush=True)
    rows[1].ratio = rows[1].value / rows[0].value if rows[0].value else None
    return rows


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:g}s")
        time.sleep(0.2)


def measure_workers(args: argparse.Namespace) -> list[Row]:
    """Each worker count's median over `--rounds` rounds, the counts taken in turn within each
    round: on a small shared machine one run can be a third off the next, and interleaving keeps
    such a swing from landing on one count alone."""
    counts = args.workers
    rates: dict[int, list[float]] = {count: [] for count in counts}
    losses: dict[int, int] = dict.fromkeys(counts, 0)
    busy: dict[int, list[cpu.Use]] = {count: [] for count in counts}
    costs: dict[int, list[float]] = {count: [] for count in counts}
    sent = 0
    for _ in range(args.rounds):
        for count in counts:
            run = _drain(count, args)
            rates[count].append(run.rate)
            losses[count] += run.lost
            busy[count].extend([run.use] if run.use else [])
            costs[count].extend([run.worker_cpu] if run.worker_cpu is not None else [])
            sent = run.sent
            cost = f"{run.worker_cpu:.0f}" if run.worker_cpu is not None else "-"
            print(
                f"workers x{count}: {run.rate:.0f} deliveries/s (lost {run.lost}), "
                f"worker CPU {cost} µs a message",
                flush=True,
            )
    rows = [
        Row(
            "workers",
            f"postgresql, {count} worker(s)"
            + (f" of {args.worker_cores} core each" if args.worker_cores else ""),
            statistics.median(rates[count]),
            "deliveries/s",
            f"{sent} sent per run, lost {losses[count]}; runs: {', '.join(f'{rate:.0f}' for rate in rates[count])}"
            + _busy(busy[count])
            + (f"; workers' CPU a message: {statistics.median(costs[count]):.0f} µs" if costs[count] else ""),
        )
        for count in counts
    ]
    for row in rows[1:]:
        row.ratio = row.value / rows[0].value if rows[0].value else None
    return rows


def _busy(uses: list[cpu.Use]) -> str:
    """The cores in use while the workers drained (median over the runs): when the machine's are
    all busy, more workers have nothing to run on."""
    if not uses:
        return ""
    machine = statistics.median(use.machine for use in uses)
    postgres = statistics.median(use.postgres for use in uses)
    return f"; cores busy while draining: {machine:.2f} of {uses[0].cores} (PostgreSQL {postgres:.2f})"


@dataclass(frozen=True)
class Drained:
    rate: float  # signed `delivered` webhooks a second
    sent: int
    lost: int
    use: cpu.Use | None  # the cores in use while the workers drained
    worker_cpu: float | None  # the workers' CPU µs per message, from when they said they run


def _drain(count: int, args: argparse.Namespace) -> Drained:
    """One run: `--backlog` messages accepted with no worker, then drained by `count` workers."""
    with tempfile.TemporaryDirectory(prefix="tidings-scale-") as tmp:
        workdir = Path(tmp)
        with deployment(
            Topology(postgresql=True), workdir, args.postgres_url, {}, worker_cores=args.worker_cores
        ) as deployed:
            with sink(deployed, workdir) as (out, receiver):
                accepted = asyncio.run(
                    offer_load(deployed.api_url, deployed.authorization, 1000, args.backlog / 1000)
                ).accepted
                before = cpu.sample([])
                for index in range(count):
                    deployed.start_worker(index)
                workers = [process.pid for process in deployed.processes[-count:]]
                deployed.wait_workers_running()
                running = cpu.sample(workers)  # their start-up (imports, connecting) is not delivery
                _wait(lambda: deployed.queued() == 0, args.drain, f"{count} worker(s) draining")
                drained = cpu.sample(workers)
                use = cpu.Use.between(before, cpu.sample([]))
                receiver.terminate()
                receiver.wait(timeout=30)
            received = [
                (arrived, status)
                for arrived, uuid, status, signed in map(json.loads, out.read_text().splitlines())
                if signed and uuid in accepted
            ]
    arrivals = [arrived for arrived, status in received if status == "delivered"]
    # From the first webhook of any status (the first delivery's `submitted`) to the last
    # `delivered`: the workers' start-up (imports, connecting) is not delivery. Not from the first
    # `delivered`: with a backlog the workers take the oldest jobs first, so they hand over most
    # messages before any receipt or webhook runs, and the `delivered` webhooks come in a burst
    # at the end, whose rate alone would flatter a slow drain.
    span = max(arrivals) - min(arrived for arrived, _ in received) if arrivals else 0.0
    rate = len(arrivals) / span if span else 0.0
    worker_cpu = None
    if running and drained and accepted:
        worker_cpu = (drained.tidings - running.tidings) / len(accepted) * 1e6
    return Drained(rate, len(accepted), len(accepted) - len(arrivals), use, worker_cpu)


def _seed_postgresql(deployed: Deployment, count: int) -> None:
    for start in range(0, count, SEED_CHUNK):
        size = min(SEED_CHUNK, count - start)
        deployed.query(
            f"""WITH seeded AS (
              INSERT INTO messages (uuid, account_id, direction, channel, message_type, to_address,
                from_address, content, options, status, segments, price, currency, connector,
                created_at, updated_at)
              SELECT gen_random_uuid()::text, '{deployed.api_key}', 'outbound', 'sms', 'text',
                '4477009' || lpad((i % 100000)::text, 5, '0'), 'Acme', '{{"text": "seeded"}}', '{{}}',
                'delivered', 1, 0.0070, 'EUR', 'simulator',
                now() - (i % 7776000) * interval '1 second', now() - (i % 7776000) * interval '1 second'
              FROM generate_series(1, {size}) AS i
              RETURNING 1)
            SELECT count(*) FROM seeded"""
        )
        print(f"  seeded {start + size:,} of {count:,}", flush=True)
    # As after any bulk load: otherwise autovacuum's first pass over the new rows (setting their
    # visibility, gathering statistics) runs during the measurement that follows.
    plain = "postgresql://" + deployed.env["TIDINGS_DATABASE_URL"].split("://", 1)[1]
    targets._pg_admin(plain, "VACUUM (ANALYZE) messages")
    print("  vacuumed and analysed", flush=True)


def _seed_sqlite(deployed: Deployment, count: int) -> None:
    database = deployed.workdir / "home" / "tidings.db"
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as conn:
        conn.execute("PRAGMA cache_size = -262144")  # 256 MB: random-key inserts into a big index
        for start in range(0, count, SEED_CHUNK):
            size = min(SEED_CHUNK, count - start)
            with conn:
                conn.execute(
                    f"""WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {size})
                    INSERT INTO messages (uuid, account_id, direction, channel, message_type, to_address,
                      from_address, content, options, status, segments, price, currency, connector,
                      created_at, updated_at)
                    SELECT lower(hex(randomblob(16))), ?, 'outbound', 'sms', 'text',
                      '4477009' || substr('00000' || (i % 100000), -5), 'Acme', '{{"text": "seeded"}}', '{{}}',
                      'delivered', 1, 0.0070, 'EUR', 'simulator',
                      strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '-' || (i % 7776000) || ' seconds'),
                      strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '-' || (i % 7776000) || ' seconds')
                    FROM seq""",
                    (deployed.api_key,),
                )
            print(f"  seeded {start + size:,} of {count:,}", flush=True)


def measure_stored(wrk: str, args: argparse.Namespace) -> list[Row]:
    rows = []
    for postgresql in (False, True):
        backend = "postgresql" if postgresql else "sqlite"
        with tempfile.TemporaryDirectory(prefix="tidings-scale-") as tmp:
            topology = Topology(postgresql=postgresql, api_processes=1)
            with deployment(topology, Path(tmp), args.postgres_url, {}) as deployed:
                empty, errors_empty = _accepts(deployed, wrk, args)
                print(f"stored {backend}: empty {empty:.0f} accepts/s; seeding {args.stored:,}", flush=True)
                (_seed_postgresql if postgresql else _seed_sqlite)(deployed, args.stored)
                full, errors_full = _accepts(deployed, wrk, args)
        rows.append(Row("stored", f"{backend}, empty", empty, "accepts/s", f"errors {errors_empty}"))
        rows.append(
            Row(
                "stored",
                f"{backend}, {args.stored:,} stored",
                full,
                "accepts/s",
                f"errors {errors_full}",
                full / empty if empty else None,
            )
        )
        print(f"stored {backend}: {full:.0f} accepts/s with {args.stored:,} stored", flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    print("\n| part | setup | per second | ratio | notes |\n|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "1.00 (baseline)"
        print(f"| {row.part} | {row.setup} | {row.value:.0f} {row.unit} | {ratio} | {row.note} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections in all (64)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per accept measurement (10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before each (3)")
    parser.add_argument("--backlog", type=int, default=6000, help="messages the workers drain (6000)")
    parser.add_argument("--drain", type=float, default=300, help="longest wait for the workers (300 s)")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(count) for count in text.split(",") if count],
        default=list(WORKER_COUNTS),
        help="worker counts for the workers part, comma list (1,2,4); the first is the baseline",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="worker runs per count; the median is shown (1)"
    )
    parser.add_argument(
        "--worker-cores",
        type=float,
        help="hold each worker process to this many cores (bench/cpu_cap.py; needs root)",
    )
    parser.add_argument("--stored", type=int, default=10_000_000, help="messages stored before (10M)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--output", type=Path, default=targets.REPO / "bench" / "results" / "scale.json")
    args = parser.parse_args(argv)
    parts = [part for part in args.parts.split(",") if part]
    if set(parts) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(set(parts) - set(PARTS)))}")
    wrk = find_wrk()
    rows: list[Row] = []
    if "api" in parts:
        rows += measure_api(wrk, args)
    if "workers" in parts:
        rows += measure_workers(args)
    if "stored" in parts:
        rows += measure_stored(wrk, args)
    print_table(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
