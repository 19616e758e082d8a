"""The worker's writes, rendered into statements for the group commit.

Delivering a message, applying a receipt, recording a webhook attempt, settling a job: each is a
handful of small writes, and hundreds happen every second under load. Rendered here into plain
statements (prepared once per dialect, prepared.py) they ride in the accept path's batches
(group_commit.py), run in the SQLite writer process or straight on asyncpg, without a trip
through SQLAlchemy's execution layer for each.

Writes that must happen only if the state they depend on still holds are guarded: the first
statement of a group changes no row when the message (or part, or job) has already moved on, and
then the rest of the group is skipped (statements.py). That is how a receipt applied twice, or a
job whose lease another worker took, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Status, statuses_before
from tidings.queue.jobs import DEAD, LEASED, PENDING, ClaimedJob, NewJob, job_rows
from tidings.store.messages import event_row
from tidings.store.parts import part_rows
from tidings.store.prepared import PreparedCache
from tidings.store.statements import Execute
from tidings.store.tables import accounts, jobs, message_events, message_parts, messages, webhook_attempts

# A message is delivered when every part is, and read when every part is read (domain/parts.py).
_DONE_WITH = {Status.DELIVERED: (Status.DELIVERED, Status.READ), Status.READ: (Status.READ,)}


def _one_of(column: Any, values: Sequence[str]) -> Any:
    """`column IN ('a', 'b')` with the values written into the SQL: a prepared statement has a
    fixed number of parameters, and these lists are fixed per statement anyway. A plan made before
    any values are bound (a generic one) can then also use a partial index over one of them (the
    claim's over job states); for that, one value is written as `column = 'a'`, since SQLite
    sees no partial index `WHERE column = 'a'` serving `column IN ('a')`. They are our own
    statuses and states, checked to be plain words."""
    for value in values:
        assert value.isidentifier()
    literals: list[Any] = [literal_column(f"'{value}'") for value in values]
    return column == literals[0] if len(literals) == 1 else column.in_(literals)


def guarded(first: Execute, rest: Sequence[Execute]) -> list[Execute]:
    """`first`, then `rest` only if `first` changed a row. `first` is marked in place: it is a
    statement bound for this call (a copy would cost more than the rest of guarding)."""
    first.skip_if_unchanged = len(rest)
    return [first, *rest]


class Writes:
    def __init__(self, dialect: Dialect) -> None:
        self._prepared = PreparedCache(dialect)

    # --- jobs ---------------------------------------------------------------------------------

    def enqueue(self, new_jobs: Sequence[NewJob], now: datetime) -> list[Execute]:
        """Inserts without returning the new ids (`inline`): nothing reads them, and on PostgreSQL
        a plain INSERT shares one pipelined exchange with its batch's others (postgres_waves.py)."""
        rows = job_rows(new_jobs, now)
        if not rows:
            return []
        prepared = self._prepared.get(
            ("enqueue", tuple(rows[0])),
            lambda: (
                insert(jobs)
                .inline()
                .values({column: bindparam(column, type_=jobs.c[column].type) for column in rows[0]})
            ),
        )
        return [prepared.bind(row, queues_job=True) for row in rows]

    def claim(self, *, worker_id: str, limit: int, now: datetime, lease: timedelta) -> list[Execute]:
        """Leases up to `limit` due jobs: first those whose worker died (their lease ran out),
        then pending ones in order of due time. Each of the two is chosen apart, so that each
        walks its own index in order (leased jobs by lease end, pending ones by due time) and
        stops at `limit`, and the first `limit` of both together are leased: a worker never gets
        more jobs than it has room for. PostgreSQL skips rows other workers hold; SQLite has one
        writer. A job whose ordering key has an earlier job still pending or leased waits its
        turn."""
        values = {"until": now + lease, "worker": worker_id, "now": now, "limit": limit}
        prepared = self._prepared.get("claim", _claim_statement)
        return [prepared.bind(values, returning=True)]

    def complete(self, job: ClaimedJob) -> Execute:
        """A done job is deleted: nothing reads it again (jobs.py says why it is not kept)."""

        def build() -> Any:
            return delete(jobs).where(*_held_lease())

        prepared = self._prepared.get("complete", build)
        return prepared.bind({"job_id": job.id, "held_attempts": job.attempts})

    def retry(self, job: ClaimedJob, now: datetime, delay: timedelta, error: str) -> Execute:
        return self._settle("retry", job, state=PENDING, run_at=now + delay, last_error=error)

    def postpone(self, job: ClaimedJob, now: datetime, delay: timedelta, reason: str) -> Execute:
        """Back to pending with the attempt its claim counted given back."""
        return self._settle(
            "postpone", job, state=PENDING, run_at=now + delay, last_error=reason, attempts=job.attempts - 1
        )

    def bury(self, job: ClaimedJob, now: datetime, error: str) -> Execute:
        return self._settle("bury", job, state=DEAD, finished_at=now, last_error=error)

    def _settle(self, name: str, job: ClaimedJob, **values: Any) -> Execute:
        """Fenced: only the holder of this attempt's lease settles the job (and, guarding the
        rest of its writes, has them applied)."""

        def build() -> Any:
            return (
                update(jobs)
                .where(*_held_lease())
                .values(
                    {column: bindparam(column, type_=jobs.c[column].type) for column in values}
                    | {"lease_until": None}
                )
            )

        prepared = self._prepared.get(("settle", name), build)
        return prepared.bind({"job_id": job.id, "held_attempts": job.attempts, **values})

    # --- messages -----------------------------------------------------------------------------

    def lock_message(self, uuid: str) -> Execute:
        """Takes the message's row lock (PostgreSQL), so that reports on its parts apply one at
        a time; SQLite has one writer anyway."""

        def build() -> Any:
            return (
                update(messages)
                .where(messages.c.uuid == bindparam("uuid"))
                .values(updated_at=messages.c.updated_at)
            )

        return self._prepared.get("lock", build).bind({"uuid": uuid})

    def advance_status(
        self,
        uuid: str,
        status: Status,
        *,
        now: datetime,
        error: DeliveryError | None = None,
        connector: str | None = None,
        segments: int | None = None,
        price: Decimal | None = None,
        currency: str | None = None,
        when_all_parts: bool = False,
        only_from: tuple[Status, ...] | None = None,
    ) -> Execute:
        """Moves the message to `status` from any status before it (or from `only_from`); with
        `when_all_parts`, only once every part of it has reached that status too (a part's receipt
        has just moved it)."""
        allowed = only_from if only_from is not None else statuses_before(status)
        values: dict[str, Any] = {
            "status": status.value,
            "error_code": int(error.code) if error else None,
            "error_detail": error.detail if error else None,
            "updated_at": now,
        }
        optional = {"connector": connector, "segments": segments, "price": price, "currency": currency}
        values.update({key: value for key, value in optional.items() if value is not None})
        key = ("advance", status, tuple(values), when_all_parts, allowed)

        def build() -> Any:
            conditions = [
                messages.c.uuid == bindparam("uuid"),
                _one_of(messages.c.status, allowed),
            ]
            if when_all_parts:
                unfinished = select(message_parts.c.part_index).where(
                    message_parts.c.message_uuid == messages.c.uuid,
                    ~_one_of(message_parts.c.status, _DONE_WITH[status]),
                )
                conditions.append(~exists(unfinished))
            assigned = {
                column: bindparam(f"new_{column}", type_=messages.c[column].type) for column in values
            }
            return update(messages).where(and_(*conditions)).values(assigned)

        params = {f"new_{column}": value for column, value in values.items()} | {"uuid": uuid}
        return self._prepared.get(key, build).bind(params)

    def event(
        self,
        *,
        event_id: str,
        message_uuid: str,
        status: Status,
        occurred_at: datetime,
        error: DeliveryError | None,
        webhook_url: str | None,
    ) -> Execute:
        row = event_row(
            event_id=event_id,
            message_uuid=message_uuid,
            status=status,
            occurred_at=occurred_at,
            error=error,
            webhook_url=webhook_url,
        )
        return self._insert("event", message_events, row)

    def refund(self, account_id: str, message_uuid: str, amount: Decimal) -> list[Execute]:
        """Gives back what a message was charged, and records that it cost nothing."""
        balance = self._prepared.get(
            "refund_balance",
            lambda: (
                update(accounts)
                .where(accounts.c.api_key == bindparam("account"))
                .values(balance=accounts.c.balance + bindparam("amount", type_=accounts.c.balance.type))
            ),
        )
        price = self._prepared.get(
            "refund_price",
            lambda: update(messages).where(messages.c.uuid == bindparam("uuid")).values(price=0),
        )
        return [balance.bind({"account": account_id, "amount": amount}), price.bind({"uuid": message_uuid})]

    def mark_inbound(self, uuid: str, status: Status, now: datetime) -> Execute:
        prepared = self._prepared.get(
            "mark_inbound",
            lambda: (
                update(messages)
                .where(messages.c.uuid == bindparam("uuid"), messages.c.direction == "inbound")
                .values(
                    status=bindparam("status"), updated_at=bindparam("now", type_=messages.c.updated_at.type)
                )
            ),
        )
        return prepared.bind({"uuid": uuid, "status": status.value, "now": now})

    # --- parts --------------------------------------------------------------------------------

    def insert_parts(
        self,
        *,
        message_uuid: str,
        account_id: str,
        connector: str,
        provider_refs: Sequence[str],
        status: Status,
        now: datetime,
    ) -> list[Execute]:
        rows = part_rows(
            message_uuid=message_uuid,
            account_id=account_id,
            connector=connector,
            provider_refs=provider_refs,
            status=status,
            now=now,
        )
        return [self._insert("part", message_parts, row) for row in rows]

    def advance_part(
        self,
        message_uuid: str,
        index: int,
        status: Status,
        *,
        error: DeliveryError | None,
        network_code: str | None,
        now: datetime,
    ) -> Execute:
        """Moves one part forward; a report that would move it back, or repeats it, changes nothing."""

        def build() -> Any:
            return (
                update(message_parts)
                .where(
                    message_parts.c.message_uuid == bindparam("uuid"),
                    message_parts.c.part_index == bindparam("index"),
                    _one_of(message_parts.c.status, statuses_before(status)),
                )
                .values(
                    status=status.value,
                    error_code=bindparam("error_code", type_=message_parts.c.error_code.type),
                    error_detail=bindparam("error_detail", type_=message_parts.c.error_detail.type),
                    network_code=bindparam("network_code", type_=message_parts.c.network_code.type),
                    updated_at=bindparam("now", type_=message_parts.c.updated_at.type),
                )
            )

        return self._prepared.get(("advance_part", status), build).bind(
            {
                "uuid": message_uuid,
                "index": index,
                "error_code": int(error.code) if error else None,
                "error_detail": error.detail if error else None,
                "network_code": network_code,
                "now": now,
            }
        )

    # --- webhooks -----------------------------------------------------------------------------

    def webhook_attempt(self, row: dict[str, Any]) -> Execute:
        return self._insert("attempt", webhook_attempts, row)

    def _insert(self, name: str, table: Any, row: dict[str, Any]) -> Execute:
        """Without returning a generated id (`inline`), as in enqueue."""
        prepared = self._prepared.get(
            (name, tuple(row)),
            lambda: (
                insert(table)
                .inline()
                .values({column: bindparam(column, type_=table.c[column].type) for column in row})
            ),
        )
        return prepared.bind(row)


def _held_lease() -> tuple[Any, ...]:
    """The job is still leased on the attempt its worker holds: a settle's fence."""
    return (
        jobs.c.id == bindparam("job_id"),
        jobs.c.state == LEASED,
        jobs.c.attempts == bindparam("held_attempts"),
    )


def _claim_statement() -> Any:
    earlier = jobs.alias("earlier")
    blocked_by_earlier = exists().where(
        earlier.c.ordering_key == jobs.c.ordering_key,
        earlier.c.id < jobs.c.id,
        _one_of(earlier.c.state, (PENDING, LEASED)),
    )
    now = bindparam("now", type_=jobs.c.run_at.type)
    limit = bindparam("limit", type_=Integer())

    def due(tier: int, condition: Any, order: Any) -> Any:
        chosen = (
            select(jobs.c.id, literal_column(str(tier)).label("tier"), order.label("due"))
            .where(condition, or_(jobs.c.ordering_key.is_(None), ~blocked_by_earlier))
            .order_by(order, jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .subquery()
        )
        return select(chosen.c.id, chosen.c.tier, chosen.c.due)

    expired = due(0, and_(_one_of(jobs.c.state, (LEASED,)), jobs.c.lease_until < now), jobs.c.lease_until)
    pending = due(1, and_(_one_of(jobs.c.state, (PENDING,)), jobs.c.run_at <= now), jobs.c.run_at)
    both = union_all(expired, pending).subquery()
    first = select(both.c.id).order_by(both.c.tier, both.c.due, both.c.id).limit(limit)
    return (
        update(jobs)
        .where(jobs.c.id.in_(first.scalar_subquery()))
        .values(
            state=LEASED,
            lease_until=bindparam("until", type_=jobs.c.lease_until.type),
            leased_by=bindparam("worker", type_=jobs.c.leased_by.type),
            attempts=jobs.c.attempts + 1,
        )
        .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.attempts, jobs.c.ordering_key)
    )
