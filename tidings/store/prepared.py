"""SQLAlchemy Core statements compiled once into the driver's own SQL and parameter order.

The group commit runs plain statement lists (statements.py) in the SQLite writer process or
straight on asyncpg; going through SQLAlchemy's execution layer for every statement cost more than
running it. A statement is compiled here once per dialect, with the bind processors its columns'
types would apply (UTC datetimes, JSON, Decimal), so that what is written this way reads back
through SQLAlchemy exactly as if SQLAlchemy had written it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from tidings.store.statements import Execute

Processor = Callable[[Any], Any] | None


def processor_of(column_type: Any, dialect: Dialect) -> Processor:
    process: Processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process


class Prepared:
    """One statement, compiled for one dialect: bind it to values to get an Execute."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, **compile_kwargs: Any) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, **compile_kwargs))
        self.sql = str(compiled)
        self.names: list[str] = list(compiled.positiontup or [])
        # Values the statement fixes itself (a literal in a WHERE, the 6 of round(…, 6), a NULL it
        # sets): every parameter but the placeholders bind() fills in.
        self.constants = {
            name: value for name, value in compiled.params.items() if not compiled.binds[name].required
        }
        # Only the parameters whose type has a bind processor (UTC datetimes, JSON, Decimal): most
        # are strings and numbers the driver takes as they are. The worker binds some sixteen
        # statements a message, so bind() is kept to one pass over the names.
        self._processed = [
            (index, process)
            for index, name in enumerate(self.names)
            if (process := processor_of(compiled.binds[name].type, dialect)) is not None
        ]

    def bind(
        self,
        values: Mapping[str, Any],
        *,
        skip_if_unchanged: int = 0,
        queues_job: bool = False,
        returning: bool = False,
    ) -> Execute:
        merged = {**self.constants, **values} if self.constants else values
        params = [merged[name] for name in self.names]
        for index, process in self._processed:
            if params[index] is not None:
                params[index] = process(params[index])
        return Execute(
            self.sql,
            tuple(params),
            skip_if_unchanged=skip_if_unchanged,
            returning=returning,
            queues_job=queues_job,
        )


class PreparedCache:
    """Prepared statements of one dialect, built on first use and kept."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._prepared: dict[Any, Prepared] = {}

    def get(self, key: Any, build: Callable[[], ClauseElement]) -> Prepared:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = Prepared(build(), self.dialect)
        return prepared
