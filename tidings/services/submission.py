"""Accepting a message: store it and its delivery job durably, then let the worker know.

With an `Idempotency-Key`, the key is stored in the same transaction as the message: a repeat of
the request (the Python SDK re-sends a POST whose connection dropped) is answered with the first
message's uuid and stores nothing; the same key with another body is refused. Two requests with
one key racing each other meet at the key's primary key, and the loser replays the winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from tidings.domain.account import Account
from tidings.domain.errors import InvalidParameter, InvalidParams
from tidings.domain.message import Message
from tidings.queue.jobs import job_rows
from tidings.services.delivery import DeliverMessage, DeliverMessages
from tidings.services.pricing import Pricing
from tidings.store import idempotency as idempotency_store
from tidings.store.batch_sql import Debit
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.messages import message_row
from tidings.store.tables import idempotency_keys, jobs, messages


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    request_hash: str  # of the request's content, so that the same request matches however it is spelled


@dataclass(frozen=True)
class Accepted:
    message_uuid: str
    replayed: bool = False  # the answer given to an earlier request with the same key


class MessageSubmitter:
    def __init__(
        self,
        writer: GroupCommitWriter,
        pricing: Pricing,
        database: Database,
        *,
        wake_worker: Callable[[], None],
    ) -> None:
        self._writer = writer
        self._pricing = pricing
        self._database = database
        self._wake_worker = wake_worker

    async def submit(
        self, message: Message, account: Account, idempotency: IdempotencyKey | None = None
    ) -> Accepted:
        """Returns once the message, its price and its delivery job are committed together (the
        outbox); raises LowBalance when the account's credit limit would be exceeded."""
        if idempotency is not None:
            kept = await self._kept_answer(account, idempotency)
            if kept is not None:
                return kept
        quote = self._pricing.quote(message)
        row = message_row(message) | {
            "price": quote.usage.price,
            "currency": quote.usage.currency,
            "segments": quote.parts,
        }
        delivery = DeliverMessages.new(DeliverMessage(message_uuid=message.uuid))
        (job_row,) = job_rows([delivery], message.created_at)
        rows = [(messages, row), (jobs, job_row)]
        if idempotency is not None:
            key_row = idempotency_store.idempotency_row(
                account.api_key, idempotency.key, idempotency.request_hash, message.uuid, message.created_at
            )
            rows.append((idempotency_keys, key_row))
        debit = Debit(account_id=account.api_key, amount=quote.usage.price, credit_limit=account.credit_limit)
        try:
            await self._writer.write(rows, debit)
        except IntegrityError:
            kept = await self._kept_answer(account, idempotency) if idempotency is not None else None
            if kept is None:
                raise
            return kept
        self._wake_worker()
        return Accepted(message.uuid)

    async def _kept_answer(self, account: Account, idempotency: IdempotencyKey) -> Accepted | None:
        async with self._database.read() as conn:
            kept = await idempotency_store.find_answer(conn, account.api_key, idempotency.key)
        if kept is None:
            return None
        now = datetime.now(UTC)
        if kept.expired(now):
            # Used over a day ago and not yet cleaned up: the key is free, but its old row would
            # refuse the new one's.
            async with self._database.begin() as conn:
                await idempotency_store.forget_expired(conn, account.api_key, idempotency.key, now=now)
            return None
        if kept.request_hash != idempotency.request_hash:
            raise InvalidParams(
                [
                    InvalidParameter(
                        "Idempotency-Key",
                        "was already used with a different request in the last 24 hours; use a new key.",
                    )
                ]
            )
        return Accepted(kept.message_uuid, replayed=True)
