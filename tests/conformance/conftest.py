"""The conformance tests run the API role only: no worker moves a message on, so what a request
stored stays as it was for the test to look at."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.config import Settings
from tidings.runtime import Role, Runtime


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()
