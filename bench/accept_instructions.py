"""`python -m bench.accept_instructions`: the instructions one send costs the API process, counted.

Time on a shared two-core machine moves by a tenth or more from one run to the next (bench.
accept_cost's whole-app row: 365 to 434 µs within ten minutes), which hides any change of a few
per cent. Instructions do not move: valgrind's cachegrind counts every instruction the process
executes, and two runs of the same code agree within one per cent. The count is taken twice, with
`--sends` sends and with 32 (the warm-up's share cancels out), after a warm-up, through the whole
app in process (bench/instruction_sends.py, 32 sends at a time): the difference, divided by the
sends, is one send's instructions, from the ASGI call to its 202, the group commit included.

Not counted: the HTTP server (bench.run measures it), the database server's own work, and on
SQLite the writer process (valgrind follows no child process). Instructions are not time (a
cache miss costs more than an addition), so this ranks changes to Python code, where the
interpreter's instructions are most of the cost; confirm a gain with bench.run.

    python -m bench.accept_instructions                          # this checkout
    python -m bench.accept_instructions --tree /path/to/main     # A/B: another checkout first

Needs valgrind (Debian: `apt-get install -y valgrind`). A run takes about two minutes a tree.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SENDER = HERE / "instruction_sends.py"
BASELINE_SENDS = 32
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accept_instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sends", type=int, default=1024, help="sends counted (a multiple of 32; 1024)")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        type=Path,
        help="another checkout whose tidings/ to count as well, listed first (repeatable)",
    )
    return parser.parse_args(argv)


def _instructions(tree: Path, sends: int, args: argparse.Namespace) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(SENDER),
        "--sends",
        str(sends),
        "--backend",
        args.backend,
        "--postgres-url",
        args.postgres_url,
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the count in {tree} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.sends <= 0 or args.sends % 32:
        sys.exit("--sends must be a positive multiple of 32")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install -y valgrind")
    trees = [tree.resolve() for tree in args.tree] + [HERE.parent]
    rows: list[tuple[Path, float]] = []
    for tree in trees:
        baseline = _instructions(tree, BASELINE_SENDS, args)
        counted = _instructions(tree, BASELINE_SENDS + args.sends, args)
        rows.append((tree, (counted - baseline) / args.sends))
    print(f"\ninstructions a send costs the API process, {args.backend}, in process (no HTTP server)\n")
    print("| tidings from | instructions a send | ratio to the first |")
    print("|---|---|---|")
    for tree, per_send in rows:
        print(f"| {tree} | {per_send:,.0f} | {per_send / rows[0][1]:.3f} |")
    print(f"\n{args.sends} sends, 32 at a time, after a warm-up; cachegrind's count of the whole process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
