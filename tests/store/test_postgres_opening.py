"""A batch's accepted rows reach the database exactly as written, whichever way they travel: as one
JSON document per table on PostgreSQL, or as arrays when a value cannot travel as JSON exactly
(and, on SQLite, through the writer process): read back through SQLAlchemy, every value is the one
handed to the group commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import asyncpg as postgres_asyncpg

from tests.store.test_group_commit import message_write
from tidings.store.batch_sql import BatchWrite
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.postgres_opening import PostgresOpening
from tidings.store.tables import jobs, messages

# Each is a message row's JSON column value, with how a PostgreSQL batch holding it travels.
CONTENTS = {
    "plain": ({"text": "héllo ☃ \U0001f600", "n": 12, "f": 1.5, "flags": [True, None]}, "json"),
    "integer_past_64_bits": ({"custom": {"n": 2**70}}, "arrays"),
    "lone_surrogate": ({"custom": {"s": "a\ud800b"}}, "arrays"),
    "nul_in_a_json_value": ({"custom": {"s": "a\x00b"}}, "arrays"),
    "backslash_u0000_text": ({"text": "a\\u0000b"}, "arrays"),  # only looks like a NUL: harmless
}


def _write(content: dict[str, Any]) -> list[Any]:
    (table, row), job = message_write()
    created = datetime(2026, 11, 29, 22, 30, 1, 123456, tzinfo=timezone(timedelta(hours=2)))
    row = row | {
        "content": content,
        "price": Decimal("0.033300"),
        "segments": 3,
        "trusted_recipient": False,
        "client_ref": None,
        "created_at": created,
        "updated_at": created.astimezone(UTC),
    }
    return [(table, row), job]


@pytest.mark.parametrize("case", CONTENTS)
def test_a_batch_travels_as_json_unless_a_value_cannot(case: str) -> None:
    content, way = CONTENTS[case]
    write = _write(content)
    opening = PostgresOpening(postgres_asyncpg.dialect())
    built = opening.build([BatchWrite(write, None), BatchWrite(_write(CONTENTS["plain"][0]), None)])
    assert ("json_populate_recordset" in built.sql) == (way == "json")
    assert ("unnest" in built.sql) == (way == "arrays")
    # A document per table, or an array per column.
    assert len(built.arguments) == (2 if way == "json" else sum(len(row) for _, row in write))


def test_a_naive_datetime_is_refused_as_on_every_other_path() -> None:
    write = _write(CONTENTS["plain"][0])
    write[0][1]["created_at"] = datetime(2026, 11, 29, 22, 30)  # no zone: which instant is it?
    with pytest.raises(ValueError, match="naive"):
        PostgresOpening(postgres_asyncpg.dialect()).build([BatchWrite(write, None)])


class _Moment(datetime):
    """A datetime subclass, which orjson does not write itself."""


@pytest.mark.parametrize("moment", [datetime, _Moment])
def test_an_aware_datetime_travels_as_json_as_the_same_instant(moment: type[datetime]) -> None:
    write = _write(CONTENTS["plain"][0])
    write[0][1]["created_at"] = moment(2026, 11, 29, 22, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    built = PostgresOpening(postgres_asyncpg.dialect()).build([BatchWrite(write, None)])
    assert "json_populate_recordset" in built.sql
    (message,) = json.loads(built.arguments[0])
    assert datetime.fromisoformat(message["created_at"]) == datetime(2026, 11, 29, 20, 30, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("case", CONTENTS)
async def test_every_value_reads_back_as_written(case: str, database: Database) -> None:
    content, _ = CONTENTS[case]
    writer = GroupCommitWriter(database, max_batch=64, window_seconds=0.005)
    writer.start()
    try:
        plain, odd = _write(CONTENTS["plain"][0]), _write(content)
        await writer.write(plain)
        await writer.write(odd)
    finally:
        await writer.stop()
    for write in (plain, odd):
        (_, row), (_, job) = write
        async with database.engine.connect() as conn:
            stored = (
                (await conn.execute(select(messages).where(messages.c.uuid == row["uuid"]))).mappings().one()
            )
            stored_job = (
                (
                    await conn.execute(
                        select(jobs).where(jobs.c.payload["message_uuid"].as_string() == row["uuid"])
                    )
                )
                .mappings()
                .one()
            )
        assert {column: stored[column] for column in row} == row
        assert stored["created_at"].utcoffset() == timedelta(0)  # the same instant, read back in UTC
        assert {column: stored_job[column] for column in job} == job
