"""UtcDateTime (store/types.py): on SQLite its own fast bind processor must write exactly the text
SQLAlchemy's DATETIME writes, since stored times are compared as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from tidings.store.prepared import processor_of
from tidings.store.types import UtcDateTime

TIMES = [
    datetime(2026, 11, 29, 19, 12, 20, 833324, tzinfo=UTC),
    datetime(2026, 11, 29, 19, 12, 20, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 3, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2025, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2))),  # the next year in UTC
    datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC),  # a year of one digit: still four
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_sqlite_text_is_what_sqlalchemy_s_datetime_writes(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = processor_of(UtcDateTime(), dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_datetime_is_refused() -> None:
    process = processor_of(UtcDateTime(), sqlite.dialect())
    assert process is not None
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 1, 1))


def test_stored_times_read_back_and_compare_in_time_order() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table(
        "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UtcDateTime())
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": n, "at": at} for n, at in enumerate(TIMES)])
        back = dict(conn.execute(sa.select(table.c.id, table.c.at)).all())
        cutoff = datetime(2026, 1, 1, tzinfo=UTC)
        before = set(conn.execute(sa.select(table.c.id).where(table.c.at < cutoff)).scalars())
    assert [back[n] for n in range(len(TIMES))] == [at.astimezone(UTC) for at in TIMES]
    assert all(at.tzinfo is UTC for at in back.values())
    assert before == {n for n, at in enumerate(TIMES) if at < cutoff}
