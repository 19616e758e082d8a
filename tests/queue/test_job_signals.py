"""PostgreSQL LISTEN/NOTIFY: a message accepted by one process wakes the worker of another at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import empty_database, run_async
from tidings.config import Settings
from tidings.domain.content import Text
from tidings.domain.message import Channel, Message, MessageType
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account
from tidings.store.accounts import get_account
from tidings.store.tables import messages

POLL_SECONDS = 30.0  # far longer than the test may take: only a notification can wake the worker


@pytest.fixture
def postgres_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """PostgreSQL only: SQLite has one writing process, and nothing to notify."""
    run_async(lambda: empty_database(postgres_url))
    return Settings(
        home=tmp_path / "home",
        database_url=postgres_url,
        auto_migrate=False,
        worker_poll_seconds=POLL_SECONDS,
        simulator_delivery_delay_seconds=0,
        log_format="text",
    )


async def test_a_worker_in_another_process_is_woken_by_the_commit(postgres_settings: Settings) -> None:
    api, worker = Runtime(postgres_settings, Role.API), Runtime(postgres_settings, Role.WORKER)
    await api.start()
    await worker.start()
    try:
        assert worker._listener is not None
        await asyncio.wait_for(worker._listener.listening.wait(), 10)
        credentials = await create_account(api.database, api.box, name="notify")
        async with api.database.engine.connect() as conn:
            account = await get_account(conn, credentials.api_key)
        assert account is not None
        sent = Message(
            uuid=str(uuid.uuid4()),
            account_id=account.api_key,
            channel=Channel.SMS,
            message_type=MessageType.TEXT,
            to="447700900000",
            sender="Acme",
            content=Text("wake up"),
            created_at=datetime.now(UTC),
        )
        started = time.monotonic()
        await api.submitter.submit(sent, account)
        while True:
            async with api.database.engine.connect() as conn:
                status = (
                    await conn.execute(select(messages.c.status).where(messages.c.uuid == sent.uuid))
                ).scalar()
            if status == "delivered":
                break
            assert time.monotonic() - started < POLL_SECONDS / 3, (
                f"still {status}: no notification woke the worker"
            )
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
        await api.stop()
