"""compact_json: orjson's speed without its surprises. Everything the standard library writes it
writes with the same meaning, what orjson refuses falls back rather than failing, and nothing it
reads changes value (orjson would read a 70-bit integer as a float)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from tidings import compact_json
from tidings.queue.jobs import NewJob, job_rows
from tidings.runtime import Runtime
from tidings.store.tables import jobs


def _standard(value: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"status": "delivered", "usage": {"price": "0.0333"}, "count": 3, "ok": True, "none": None},
        {"text": 'Grüße, 日本語, emoji 🎉, quote " backslash \\ newline \n tab \t nul \u0000'},
        [1, -2, 0.5, 1.25, "x", [], {}],
        2**63 - 1,
    ],
)
def test_what_the_standard_encoder_writes_is_written_byte_for_byte(value: Any) -> None:
    assert compact_json.dumps(value) == _standard(value)
    assert compact_json.loads(compact_json.dumps_text(value)) == value


@pytest.mark.parametrize(
    "value",
    [2**70, {"big": -(2**64), "text": "Grüße"}, {1: "a key that is not a string"}, _nested(300), "\ud800"],
    ids=[
        "integer past 64 bits",
        "negative past 64 bits",
        "key not a string",
        "nested 300 deep",
        "lone surrogate",
    ],
)
def test_what_orjson_refuses_the_standard_encoder_writes(value: Any) -> None:
    assert compact_json.dumps(value) == _standard(value, ascii_only=True)


def test_floats_keep_their_value_however_they_are_spelled() -> None:
    values = [1e16, 1e-7, 0.1, 123456.789, -2.5e-300]
    assert json.loads(compact_json.dumps(values)) == values


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123",
        '{"n": 18446744073709551616}',
        '{"n": -9223372036854775809}',
        '"\\ud800"',
        '{"digits in a string": "1234567890123456789012", "n": 1}',
        "[" * 900 + "]" * 900,
    ],
    ids=[
        "big integer",
        "past unsigned 64 bits",
        "past signed 64 bits",
        "lone surrogate",
        "long digits",
        "deep",
    ],
)
def test_what_orjson_would_misread_or_refuse_is_read_as_the_standard_parser_reads_it(text: str) -> None:
    read = compact_json.loads(text)
    assert read == json.loads(text)
    assert type(read) is type(json.loads(text))
    assert compact_json.loads(text.encode()) == read  # a driver may hand over bytes


async def test_a_json_column_keeps_every_value_exactly(runtime: Runtime) -> None:
    payload = {"big": 2**70, "text": "Grüße 日本語", "float": 1e-7, "list": [1, None, True]}
    async with runtime.database.begin() as conn:
        await conn.execute(insert(jobs), job_rows([NewJob(kind="test", payload=payload)], datetime.now(UTC)))
    async with runtime.database.read() as conn:
        (stored,) = (await conn.execute(select(jobs.c.payload).where(jobs.c.kind == "test"))).scalars()
    assert stored == payload and type(stored["big"]) is int
