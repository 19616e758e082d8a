"""Ids: version 4 UUIDs, and time-ordered version 7 ones for messages and events; never repeated,
not even across a fork."""

from __future__ import annotations

import multiprocessing
import time
import uuid

from tidings.domain.ids import new_time_ordered_uuid, new_uuid


def test_ids_are_distinct_version_4_uuids_across_many_blocks() -> None:
    ids = [new_uuid() for _ in range(5000)]  # ~20 blocks of kernel randomness
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_time_ordered_ids_are_distinct_version_7_uuids_that_sort_by_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = [new_time_ordered_uuid() for _ in range(5000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before_ms <= parsed.int >> 80 <= after_ms  # the first 48 bits: Unix time in ms
    first = ids[0]
    while (later := new_time_ordered_uuid())[:13] == first[:13]:  # until the millisecond moves on
        pass
    assert sorted([later, first]) == [first, later]


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
