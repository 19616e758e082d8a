"""Holding a process to a fixed share of the CPU, with a Linux control group's CPU quota.

Why the benchmarks need it: "do two workers deliver 1.7 times what one does?" is a question about
the design (do workers contend for rows, locks or wake-ups?), but on a two-core machine the
answer is the machine's. One uncapped worker already takes most of a core and the API process,
PostgreSQL, the load and the receiver take the rest, so a second worker has no core to run on.
Given the same quota each (say 0.25 of a core), one worker and two workers run with the machine
not saturated, and what two deliver over one shows how the design scales out.

Both cgroup versions are handled: v1's `cpu` hierarchy (`cpu.cfs_quota_us`) and v2's unified one
(`cpu.max`, when its `cpu` controller is enabled). Either needs write access to the hierarchy
(root, or a delegated subtree); without it the benchmark stops with that hint rather than
running uncapped.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PERIOD_MICROSECONDS = 100_000  # the kernel's default period
_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


class CapUnavailable(RuntimeError):
    pass


class CpuCap:
    """Puts each process it is given into a control group of its own, held to `cores` of CPU;
    `remove()` deletes the groups once their processes have exited."""

    def __init__(self, cores: float) -> None:
        available = os.cpu_count() or 1
        if not 0.01 <= cores <= available:
            raise CapUnavailable(f"a cap of {cores} cores is outside 0.01 .. {available}")
        self.cores = cores
        self._root, self._v2 = _hierarchy()
        self._groups: list[Path] = []

    def confine(self, pid: int, name: str) -> None:
        group = self._root / f"tidings-bench-{os.getpid()}-{name}"
        group.mkdir(exist_ok=True)
        quota = round(self.cores * PERIOD_MICROSECONDS)
        if self._v2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_MICROSECONDS}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_MICROSECONDS))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        (group / "cgroup.procs").write_text(str(pid))
        self._groups.append(group)

    def remove(self) -> None:
        for group in self._groups:
            with contextlib.suppress(OSError):  # a process still inside keeps its group: harmless
                group.rmdir()
        self._groups.clear()


def _hierarchy() -> tuple[Path, bool]:
    """Where to make groups, and whether it is cgroup v2."""
    if (_V1 / "cpu.cfs_quota_us").exists() and os.access(_V1, os.W_OK):
        return _V1, False
    controllers = _V2 / "cgroup.subtree_control"
    if controllers.exists() and "cpu" in controllers.read_text().split() and os.access(_V2, os.W_OK):
        return _V2, True
    raise CapUnavailable(
        "capping a worker's CPU needs a writable cgroup CPU controller "
        f"({_V1} for cgroup v1, or {_V2} with `cpu` in cgroup.subtree_control for v2): run as root"
    )
