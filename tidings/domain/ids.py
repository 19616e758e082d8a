"""Random (version 4) UUIDs for messages, events and other records.

uuid.uuid4() asks the kernel for 16 random bytes each time; on the send path that system call was
a noticeable share of a request on sandboxed kernels (py-spy). The same kernel randomness is
read here 4 KiB at a time. A forked child starts with a fresh block, so parent and child never
hand out the same bytes.
"""

from __future__ import annotations

import os
import uuid

_BLOCK = 4096
_pool = b""
_offset = _BLOCK


def new_uuid() -> str:
    global _pool, _offset
    if _offset >= len(_pool):
        _pool, _offset = os.urandom(_BLOCK), 0
    raw = _pool[_offset : _offset + 16]
    _offset += 16
    return str(uuid.UUID(bytes=raw, version=4))


def _forget_pool() -> None:
    global _pool, _offset
    _pool, _offset = b"", _BLOCK


os.register_at_fork(after_in_child=_forget_pool)
