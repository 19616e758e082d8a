"""Shared fixtures: every database-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.receiver import WebhookReceiver
from tests.store.commit_answer_proxy import CommitAnswerProxy
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store import migrate
from tidings.store.database import Database
from tidings.store.job_signals import asyncpg_dsn
from tidings.store.tables import metadata

T = TypeVar("T")

PG_ADMIN_DSN = os.environ.get("TIDINGS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("TIDINGS_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Runs async set-up in a thread with a loop of its own, apart from the tests' loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()  # type: ignore[arg-type]


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped at the end."""
    name = f"tidings_test_{uuid.uuid4().hex[:10]}"
    run_async(lambda: _admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        run_async(lambda: migrate.upgrade(url))
        yield url
    finally:
        run_async(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Which of the tables hold a row, in one round trip.
_HOLDING_ROWS = " UNION ALL ".join(
    f"SELECT '{table.name}' WHERE EXISTS (SELECT 1 FROM {table.name})" for table in metadata.sorted_tables
)
_MOVED_SEQUENCES = (
    "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences WHERE last_value IS NOT NULL"
)


async def empty_database(url: str) -> None:
    """Every table of a PostgreSQL database emptied and every sequence restarted, the schema kept.
    TRUNCATE costs milliseconds a table however few rows it holds, and a test fills a handful of
    the tables, so only those are truncated (a tenth of a second less, a thousand times a run)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        holding = [row[0] for row in await conn.fetch(_HOLDING_ROWS)]
        if holding:
            await conn.execute(f"TRUNCATE {', '.join(holding)} RESTART IDENTITY CASCADE")
        for row in await conn.fetch(_MOVED_SEQUENCES):
            await conn.execute(f"ALTER SEQUENCE {row[0]} RESTART")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated once for the session: a test's own database is a copy of it,
    since migrating costs a tenth of a second, over a thousand times a run, and copying nothing."""
    path = tmp_path_factory.mktemp("template") / "tidings.db"
    run_async(lambda: migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    # Every connection is closed, so the file holds everything (no write-ahead log beside it).
    assert not path.with_name(f"{path.name}-wal").exists()
    return path


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL database emptied."""
    if backend == "sqlite":
        path = tmp_path / "tidings.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = str(request.getfixturevalue("postgres_url"))
    run_async(lambda: empty_database(url))
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database that one test module shares, on each backend in turn. On
    PostgreSQL it is not the session's database, which the module's tests on `database_url` may
    empty under it."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("database") / "tidings.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return suite_settings(database_url, tmp_path)


def suite_settings(database_url: str, tmp_path: Path) -> Settings:
    """The suite's settings: quick delays, short backoffs, on the given database."""
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        auto_migrate=False,
        simulator_delivery_delay_seconds=0.2,
        worker_poll_seconds=0.05,
        job_backoff_base_seconds=0.05,
        job_backoff_max_seconds=0.5,
        webhook_timeout_seconds=2.0,
        log_format="text",
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings)
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        yield client


@pytest.fixture
async def account(runtime: Runtime) -> NewAccountCredentials:
    return await create_account(runtime.database, runtime.box, name="test")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
async def commit_proxy(postgres_url: str) -> AsyncIterator[CommitAnswerProxy]:
    """A TCP proxy in front of the session's PostgreSQL server that can lose a COMMIT's answer."""
    url = make_url(postgres_url)
    proxy = CommitAnswerProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied(database_url: str, commit_proxy: CommitAnswerProxy) -> AsyncIterator[Database]:
    """The test's (PostgreSQL) database through `commit_proxy`."""
    port = await commit_proxy.start()
    database = Database(make_url(database_url).set(port=port).render_as_string(hide_password=False))
    yield database
    await database.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's database, through an engine of its own."""
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def observer(database_url: str) -> AsyncIterator[Database]:
    """The test's database through a second engine: reads come over a connection of their own
    (and, where the code under test reaches the database through a proxy, directly)."""
    database = Database(database_url)
    yield database
    await database.dispose()
