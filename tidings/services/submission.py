"""Accepting a message: store it and its delivery job durably, then let the worker know."""

from __future__ import annotations

from collections.abc import Callable

from tidings.domain.message import Message
from tidings.queue.jobs import NewJob, job_rows
from tidings.services.job_kinds import JobKind
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.messages import message_row
from tidings.store.tables import jobs, messages


class MessageSubmitter:
    def __init__(
        self, writer: GroupCommitWriter, *, max_attempts: int, wake_worker: Callable[[], None]
    ) -> None:
        self._writer = writer
        self._max_attempts = max_attempts
        self._wake_worker = wake_worker

    async def submit(self, message: Message) -> None:
        """Returns once the message and its delivery job are committed together (the outbox)."""
        delivery = NewJob(kind=JobKind.DELIVER_MESSAGE.value, payload={"message_uuid": message.uuid})
        (job_row,) = job_rows([delivery], message.created_at, self._max_attempts)
        await self._writer.write([(messages, message_row(message)), (jobs, job_row)])
        self._wake_worker()
