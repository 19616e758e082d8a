"""Two settings of the C allocator for a long-running server, where the allocator is glibc's.

Each secret check runs argon2 in a worker thread with 19 MiB of working memory. glibc serves the
first block that large with mmap and unmaps it when freed, but then raises its mmap threshold to
that size (and its trim threshold to twice that), so every later 19 MiB block comes from the
thread's own heap, which keeps it once freed (malloc_trim does not reach a thread heap's top):
each thread that ever checked a secret held 19 MiB for good. The embedded default sat at ~165 MB
after its first authenticated request instead of ~127 MB, and higher under load, with more threads.

Fixing the thresholds where glibc's own adjustment would put them anyway, just under argon2's
block, leaves every other allocation as it was and keeps argon2's mapped and returned each time.
A low fixed mmap threshold (1 MiB) would do too, but glibc then leaves the trim threshold at its
128 KiB default, so heaps are trimmed and their pages faulted back in far more often than the
server has ever run with (its send path looked slower so, though within the noise of a shared
machine). These are the values a server has run with after its first secret check all along;
only argon2's block moves.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MIB = 1024 * 1024


def return_large_blocks_when_freed() -> None:
    """Blocks of 16 MiB or more mapped on their own and unmapped when freed; heaps trimmed once
    32 MiB of their top is free, as glibc's adjustment would have set it. A no-op beyond glibc."""
    libc_version: str | None = None
    with contextlib.suppress(ValueError, OSError):  # no such name outside glibc (musl, macOS)
        libc_version = os.confstr("CS_GNU_LIBC_VERSION")
    if not libc_version or not libc_version.startswith("glibc"):
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_THRESHOLD, 16 * _MIB)
    libc.mallopt(_M_TRIM_THRESHOLD, 32 * _MIB)
