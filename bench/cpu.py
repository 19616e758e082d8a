"""Where a load's CPU goes: the CPU time of Tidings' processes, of PostgreSQL's and of the whole
machine over a stretch of time, read from /proc (Linux only; elsewhere the columns stay empty).

On a small machine a rate is often bounded by the machine rather than by one process: one more
worker process cannot deliver more when the cores are already busy. These columns show which it is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    tidings: float  # CPU seconds of the given processes and every descendant of theirs
    postgres: float  # CPU seconds of every PostgreSQL server process
    busy: float  # non-idle CPU seconds of the whole machine, all cores


@dataclass(frozen=True)
class Use:
    """Cores kept busy, on average, between two samples."""

    tidings: float
    postgres: float
    machine: float
    cores: int

    @classmethod
    def between(cls, before: Sample | None, after: Sample | None) -> Use | None:
        if before is None or after is None or after.at <= before.at:
            return None
        span = after.at - before.at
        return cls(
            tidings=(after.tidings - before.tidings) / span,
            postgres=(after.postgres - before.postgres) / span,
            machine=(after.busy - before.busy) / span,
            cores=os.cpu_count() or 1,
        )


def sample(roots: Iterable[int]) -> Sample | None:
    if not (_PROC / "stat").exists():
        return None
    table = _processes()
    wanted = _descendants(set(roots), table)
    ticks = os.sysconf("SC_CLK_TCK")
    tidings = sum(table[pid][1] for pid in wanted if pid in table) / ticks
    postgres = sum(cpu for _, cpu, name in table.values() if name == "postgres") / ticks
    return Sample(time.monotonic(), tidings, postgres, _machine_busy() / ticks)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid: (parent pid, CPU ticks so far, command name)."""
    found: dict[int, tuple[int, int, str]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state, ppid, … utime is the 14th field of the line, stime the 15th.
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), name)
    return found


def _descendants(roots: set[int], table: dict[int, tuple[int, int, str]]) -> set[int]:
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, (parent, _, _) in table.items() if parent in wanted and pid not in wanted}
        wanted |= more
        grew = bool(more)
    return wanted


def _machine_busy() -> int:
    """Ticks every core spent not idle (idle and waiting on I/O count as idle)."""
    first = (_PROC / "stat").read_text().splitlines()[0].split()
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(ticks) - ticks[3] - ticks[4]
