"""Accepting a message: store it and its delivery job durably, then let the worker know."""

from __future__ import annotations

from collections.abc import Callable

from tidings.domain.account import Account
from tidings.domain.message import Message
from tidings.queue.jobs import NewJob, job_rows
from tidings.services.job_kinds import JobKind
from tidings.services.pricing import Pricing
from tidings.store.batch_sql import Debit
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.messages import message_row
from tidings.store.tables import jobs, messages


class MessageSubmitter:
    def __init__(
        self,
        writer: GroupCommitWriter,
        pricing: Pricing,
        *,
        max_attempts: int,
        wake_worker: Callable[[], None],
    ) -> None:
        self._writer = writer
        self._pricing = pricing
        self._max_attempts = max_attempts
        self._wake_worker = wake_worker

    async def submit(self, message: Message, account: Account) -> None:
        """Returns once the message, its price and its delivery job are committed together (the
        outbox); raises LowBalance when the account's credit limit would be exceeded."""
        quote = self._pricing.quote(message)
        row = message_row(message) | {
            "price": quote.usage.price,
            "currency": quote.usage.currency,
            "segments": quote.parts,
        }
        delivery = NewJob(kind=JobKind.DELIVER_MESSAGE.value, payload={"message_uuid": message.uuid})
        (job_row,) = job_rows([delivery], message.created_at, self._max_attempts)
        debit = Debit(account_id=account.api_key, amount=quote.usage.price, credit_limit=account.credit_limit)
        await self._writer.write([(messages, row), (jobs, job_row)], debit)
        self._wake_worker()
