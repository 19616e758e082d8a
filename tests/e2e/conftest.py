"""Fixtures for tests that run real `tidings serve` processes (see server.py)."""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.private_services import PrivatePostgres
from tests.e2e.server import Credentials, TidingsServer

NODE_DIR = Path(__file__).parent / "node"
SERVERS = pytest.StashKey[list[TidingsServer]]()

MakeServer = Callable[..., TidingsServer]


@pytest.fixture
def make_server(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeServer]:
    """Builds a (not yet started) server on the test's database: `make_server(TIDINGS_X="1", ...)`,
    or `make_server(role="worker", ...)` for one role alone.

    Every server made here is stopped at the end of the test, and killed if it will not stop.
    """
    yield from _servers(database_url, tmp_path, request)


def _servers(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest, shared: Mapping[str, str] | None = None
) -> Iterator[MakeServer]:
    made: list[TidingsServer] = []
    request.node.stash[SERVERS] = made

    def make(role: str = "all", **settings: str) -> TidingsServer:
        index = len(made)
        server = TidingsServer(
            home=tmp_path / f"home{index}",
            database_url=database_url,
            log_path=tmp_path / f"tidings-{index}-{role}.log",
            settings={**(shared or {}), **settings},
            role=role,
        )
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the module's own, which its tests may stop and restart."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def private_database_url(private_postgres: PrivatePostgres) -> str:
    """A new, migrated database on the module's own PostgreSQL cluster."""
    return private_postgres.new_database()


@pytest.fixture
def make_private_server(
    private_database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeServer]:
    """As `make_server`, on the private PostgreSQL cluster's database. The servers share one
    secret key, as every process of a deployment must (each one seals and opens secrets)."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    yield from _servers(private_database_url, tmp_path, request, {"TIDINGS_SECRET_KEY": key})


@dataclass(frozen=True)
class SharedServer:
    server: TidingsServer
    credentials: Credentials  # an account made for the module


@pytest.fixture(scope="module")
def module_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SharedServer]:
    """One running `tidings serve --tls`, and an account on it, for every test of a module (per
    backend), so that tests which can share a server do not each pay for starting one; they keep
    apart by their own messages. The simulator answers after 0.2 s."""
    directory = tmp_path_factory.mktemp("server")
    server = TidingsServer(
        home=directory / "home",
        database_url=module_database_url,
        log_path=directory / "tidings.log",
        settings={"TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS": "0.2"},
    )
    request.node.stash[SERVERS] = [server]
    try:
        # The CLI takes seconds to start; it makes the account while the server starts.
        with ThreadPoolExecutor(1) as pool:
            account = pool.submit(server.create_account)
            server.start()
            credentials = account.result()
        yield SharedServer(server, credentials)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def node_dir() -> Path:
    """tests/e2e/node, with its node_modules installed from the committed package-lock.json."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the Node SDK end-to-end tests", pytrace=False)
    # Several test processes (pytest-xdist) may get here at once: one installs, the others wait.
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (NODE_DIR / "node_modules" / "@vonage" / "server-sdk").is_dir():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci exited {done.returncode}:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return NODE_DIR


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        # The test's own servers, and those its module shares (module_server).
        servers = [server for node in item.listchain() for server in node.stash.get(SERVERS, [])]
        for index, server in enumerate(servers):
            report.sections.append((f"tidings serve #{index} log", server.log()[-20000:]))
