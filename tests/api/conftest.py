"""What the API tests share beyond the suite's fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.support import Refusing
from tests.conftest import suite_settings
from tidings.api.app import create_app
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account


@pytest.fixture(scope="module")
async def refusing(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Refusing]:
    settings = suite_settings(module_database_url, tmp_path_factory.mktemp("refusing"))
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    try:
        account = await create_account(runtime.database, runtime.box, name="refused")
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
            yield Refusing(runtime, client, account)
    finally:
        await runtime.stop()
