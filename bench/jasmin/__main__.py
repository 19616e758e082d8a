"""`python -m bench.jasmin`: Tidings against Jasmin SMS gateway, end to end, in the same run.

Measured "Jasmin's way": N messages (2000), 32 in flight, from the first send to the last
delivery-receipt callback, in messages per second. Rows: Tidings (SQLite, role all, simulator
answering at once, signed `delivered` webhooks), Jasmin as it comes out of the box, and Jasmin
tuned through its configuration. Jasmin delivers over real SMPP v3.4 to a local SMSC written on
the npm `smpp` package; Tidings delivers through its built-in simulator. Needs Jasmin and the
SMSC's package installed by bench/jasmin/setup.sh, RabbitMQ and Redis. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import targets
from bench.jasmin import gateway
from bench.jasmin.sides import Result, measure_jasmin, measure_tidings

ROWS = ("tidings", "jasmin-default", "jasmin-tuned")
# Out of the box a Jasmin SMPP connector submits 1 message a second (submit_throughput 1), so its
# 2000 messages would take over half an hour; its row sends fewer unless told otherwise.
DEFAULT_ROW_MESSAGES = 100


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    # two significant digits below 0.1: the out-of-the-box row is about 1/200 of the tuned one
    return "-" if value is None else f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def print_table(results: list[Result]) -> None:
    tuned = next((r.per_second for r in results if r.setup == gateway.TUNED.name), None)
    print()
    print("| setup | messages | in flight | seconds | msg/s | ratio vs jasmin tuned |")
    print("|---|---|---|---|---|---|")
    for result in results:
        ratio = result.per_second / tuned if result.per_second and tuned else None
        mark = "" if result.complete else " (!)"
        print(
            f"| {result.setup}{mark} | {result.messages} | {result.in_flight} | {_fmt(result.seconds, 2)} | "
            f"{_fmt(result.per_second)} | {_ratio(ratio)} |"
        )
    print()
    for result in results:
        accepted = len(result.sent.accepted)
        line = (
            f"{result.setup}: {accepted} accepted in {result.sent.seconds:.2f} s "
            f"({accepted / result.sent.seconds if result.sent.seconds else 0:,.0f}/s), "
            f"{result.delivered} delivered"
        )
        if result.sent.refusals:
            line += f", {result.sent.refusals} refused (e.g. {result.sent.refused[0]})"
        print(" ".join([line, *(f"; {note}" for note in result.notes)]))
    if not all(result.complete for result in results):
        print(
            "(!) marks a row where not every message was accepted and delivered: its figures count "
            "only what was delivered."
        )
    print(
        "Tidings delivers through its built-in simulator; Jasmin through real SMPP v3.4 to a local "
        "SMSC (Node, npm `smpp`) that acknowledges each submit_sm and sends its receipt at once."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jasmin", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per row (2000)")
    parser.add_argument(
        "--default-messages",
        type=int,
        default=DEFAULT_ROW_MESSAGES,
        help=f"messages for the `jasmin default` row, which submits 1/s ({DEFAULT_ROW_MESSAGES})",
    )
    parser.add_argument("--in-flight", type=int, default=32, help="requests in flight (32)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds to wait for the last receipt after the last send (300)",
    )
    parser.add_argument("--output", type=Path, default=targets.REPO / "bench" / "results" / "jasmin.json")
    args = parser.parse_args(argv)
    rows = [row for row in args.rows.split(",") if row]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    if any(row.startswith("jasmin") for row in rows) and (why := gateway.missing()):
        print(
            f"Jasmin cannot be run: {why}.\n"
            "Install it with `bash bench/jasmin/setup.sh` (see bench/README.md), or run only "
            "`--rows tidings`.",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    results: list[Result] = []
    failed: list[str] = []
    for row in rows:
        print(f"measuring {row} ...", flush=True)
        try:
            if row == "tidings":
                result = measure_tidings(args.messages, args.in_flight, args.timeout)
            else:
                tuning = gateway.DEFAULT if row == "jasmin-default" else gateway.TUNED
                count = args.default_messages if tuning is gateway.DEFAULT else args.messages
                result = measure_jasmin(tuning, count, args.in_flight, args.timeout + count)
        except RuntimeError as error:  # a server that did not start, a refused jCli command, ...
            print(f"  {row} could not be measured: {error}", file=sys.stderr, flush=True)
            failed.append(row)
            continue
        results.append(result)
        print(
            f"  {result.delivered}/{result.messages} delivered, {_fmt(result.per_second)} msg/s", flush=True
        )
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "elapsed_s": time.monotonic() - started,
                "rows": [
                    {
                        "setup": r.setup,
                        "messages": r.messages,
                        "in_flight": r.in_flight,
                        "accepted": len(r.sent.accepted),
                        "accept_seconds": r.sent.seconds,
                        "delivered": r.delivered,
                        "seconds": r.seconds,
                        "per_second": r.per_second,
                        "notes": r.notes,
                    }
                    for r in results
                ],
            },
            indent=1,
        )
    )
    return 0 if not failed and all(result.complete for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
