"""`python -m bench.run`: measure the send path (POST /v1/messages → 202) and print one table.

In one run, on this machine, with wrk as the load generator: the bare FastAPI baseline, then
`tidings serve --role all` on SQLite and on PostgreSQL. Each gets a warm-up, then the measured
run; for Tidings the rows in `messages` are counted afterwards against the 202s wrk saw.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import targets
from bench.wrk import WrkMissing, WrkResult, find_wrk, run_wrk, wrk_version

RESULTS = Path(__file__).with_name("results")
BACKENDS = ("sqlite", "postgresql")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of each measured run (30)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before each run (3)")
    parser.add_argument(
        "--connections", default="32", help="concurrent connections; a comma list runs each (32)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1; the machine has few cores)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="Tidings backends, comma list (sqlite,postgresql)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a server to create (and drop) a fresh benchmark database on",
    )
    parser.add_argument(
        "--role",
        default="all",
        choices=("all", "api"),
        help="`tidings serve --role`: all = worker in the same process, as shipped (all)",
    )
    parser.add_argument(
        "--delivery-delay",
        type=float,
        default=3600,
        help="TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS: keeps delivery reports out of the run (3600)",
    )
    parser.add_argument(
        "--count-status",
        action="store_true",
        help="count every non-202 exactly with wrk's response() hook (slows wrk)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="JSON results")
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in str(args.connections).split(",") if c.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    if not args.connections or min(args.connections) < 1:
        parser.error("--connections must be positive")
    return args


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _settled_count(server: targets.Server) -> int:
    """wrk stops the clock with requests still in flight; let the server finish them first."""
    assert server.count_messages is not None
    previous = -1
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.5)
        current = server.count_messages()
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


def _measure(server: targets.Server, wrk: str, args: argparse.Namespace, connections: int) -> dict[str, Any]:
    label = f"{server.target}/{server.backend} c={connections}"

    def load(seconds: float) -> WrkResult:
        return run_wrk(
            wrk,
            server.url,
            authorization=server.authorization,
            connections=connections,
            threads=args.threads,
            duration_s=seconds,
            count_status=args.count_status,
        )

    if args.warmup > 0:
        _say(f"  {label}: warm-up {args.warmup:g}s")
        load(args.warmup)
    before = _settled_count(server) if server.count_messages else None
    _say(f"  {label}: measuring {args.duration:g}s")
    result = load(args.duration)
    row: dict[str, Any] = {
        "target": server.target,
        "backend": server.backend,
        "connections": connections,
        **result.as_dict(),
    }
    if server.count_messages and before is not None:
        written = _settled_count(server) - before
        # Rows beyond the 202s are requests wrk abandoned when its clock ran out (at most one per
        # connection); a 202 without a row would be a lost write.
        row["durability"] = {
            "rows_written": written,
            "accepted_by_wrk": result.accepted,
            "rows_without_answer": max(0, written - result.accepted),
            "answers_without_row": max(0, result.accepted - written),
            "ok": result.accepted <= written <= result.accepted + connections,
        }
        assert server.count_pending_deliveries is not None
        row["deliveries_pending_after_run"] = server.count_pending_deliveries()
    return row


@contextlib.contextmanager
def _target(name: str, workdir: Path, args: argparse.Namespace) -> Iterator[targets.Server]:
    if name == "bare":
        with targets.bare(workdir) as server:
            yield server
    elif name == "sqlite":
        with targets.tidings_sqlite(workdir, role=args.role, delivery_delay_s=args.delivery_delay) as server:
            yield server
    else:
        with targets.tidings_postgresql(
            workdir, admin_url=args.postgres_url, role=args.role, delivery_delay_s=args.delivery_delay
        ) as server:
            yield server


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    bare = {row["connections"]: row["requests_per_second"] for row in rows if row["target"] == "bare"}
    for row in rows:
        base = bare.get(row["connections"])
        row["ratio_vs_bare"] = round(row["requests_per_second"] / base, 3) if base else None


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["target", "backend", "connections", "requests/s", "p50 ms", "p99 ms", "errors", "ratio vs bare"]
    lines = [
        [
            row["target"],
            row["backend"],
            str(row["connections"]),
            f"{row['requests_per_second']:.0f}",
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p99']:.2f}",
            str(row["errors"]["total"]),
            "-" if row.get("ratio_vs_bare") is None else f"{row['ratio_vs_bare']:.2f}",
        ]
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    left = {0, 1}

    def render(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])


def format_notes(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    notes = []
    for row in rows:
        if "durability" not in row:
            continue
        d = row["durability"]
        verdict = "ok" if d["ok"] else "FAILED"
        notes.append(
            f"durability {row['backend']} c={row['connections']}: {d['rows_written']} rows written, "
            f"{d['accepted_by_wrk']} 202s counted by wrk, {d['rows_without_answer']} rows whose answer wrk "
            f"abandoned at the end, {d['answers_without_row']} answers without a row: {verdict}; "
            f"{row['deliveries_pending_after_run']} deliveries still queued after the run"
        )
    worker = (
        "on (tidings serve --role all: the worker runs in the same process and hands every accepted "
        "message to the simulator during the run)"
        if args.role == "all"
        else "off (tidings serve --role api: accepted messages queue up for a worker)"
    )
    notes.append(f"worker: {worker}; delivery reports held back {args.delivery_delay:g}s")
    status = "exact non-202 (response hook)" if args.count_status else "wrk's status >= 400 count"
    notes.append(f"errors = socket errors + timeouts + {status}")
    return "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        wrk = find_wrk()
    except WrkMissing as missing:
        _say(str(missing))
        return 2
    names = ["bare", *args.backends]
    per_run = args.warmup + args.duration + 3
    _say(
        f"bench: {', '.join(names)} at connections {args.connections}, {args.duration:g}s each after "
        f"{args.warmup:g}s warm-up, wrk -t{args.threads} (about "
        f"{len(names) * (len(args.connections) * per_run + 6):.0f}s)"
    )
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
        for name in names:
            workdir = Path(tmp) / name
            workdir.mkdir()
            try:
                with _target(name, workdir, args) as server:
                    _say(f"{name}: listening on {server.url}")
                    for connections in args.connections:
                        rows.append(_measure(server, wrk, args, connections))
            except Exception as error:  # one target failing should not hide the others' numbers
                failures.append(f"{name}: {error}")
                _say(f"{name}: FAILED: {error}")
    _add_ratios(rows)
    print()
    print(format_table(rows))
    print()
    print(format_notes(rows, args))
    for failure in failures:
        print(f"FAILED {failure}")
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "wrk": wrk_version(wrk),
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": args.threads,
            "tidings_role": args.role,
            "worker": "on" if args.role == "all" else "off",
            "simulator_delivery_delay_s": args.delivery_delay,
            "count_status": args.count_status,
            "tidings_env": sorted(k for k in os.environ if k.startswith("TIDINGS_")),
        },
        "results": rows,
        "failures": failures,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    lost = any(not row["durability"]["ok"] for row in rows if "durability" in row)
    return 1 if failures or lost else 0


if __name__ == "__main__":
    sys.exit(main())
