"""Fixtures for tests that run real `tidings serve` processes (see server.py)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.server import TidingsServer

SERVERS = pytest.StashKey[list[TidingsServer]]()

MakeServer = Callable[..., TidingsServer]


@pytest.fixture
def make_server(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeServer]:
    """Builds a (not yet started) server on the test's database: `make_server(TIDINGS_X="1", ...)`.

    Every server made here is stopped at the end of the test, and killed if it will not stop.
    """
    made: list[TidingsServer] = []
    request.node.stash[SERVERS] = made

    def make(**settings: str) -> TidingsServer:
        index = len(made)
        server = TidingsServer(
            home=tmp_path / f"home{index}",
            database_url=database_url,
            log_path=tmp_path / f"tidings-{index}.log",
            settings=settings,
        )
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for index, server in enumerate(item.stash.get(SERVERS, [])):
            report.sections.append((f"tidings serve #{index} log", server.log()[-20000:]))
