"""Message and event ids: version 4 UUIDs, never repeated, not even across a fork."""

from __future__ import annotations

import multiprocessing
import uuid

from tidings.domain.ids import new_uuid


def test_ids_are_distinct_version_4_uuids_across_many_blocks() -> None:
    ids = [new_uuid() for _ in range(5000)]  # ~20 blocks of kernel randomness
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def _child_id(queue: multiprocessing.Queue[str]) -> None:
    queue.put(new_uuid())


def test_a_forked_child_does_not_repeat_its_parents_next_id() -> None:
    new_uuid()  # the parent now holds a block it has only begun
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    assert from_child != new_uuid()
