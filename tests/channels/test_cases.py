"""Every connector's cases (tests/channels/<connector>/*.json), through the one harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.channels.harness import cases, connector_folders, run_callback, run_outgoing

OUTGOING = list(cases("outgoing"))
CALLBACKS = list(cases("callbacks"))


@pytest.mark.parametrize(("path", "case"), [(p, c) for _, p, c in OUTGOING], ids=[i for i, _, _ in OUTGOING])
async def test_outgoing(path: Path, case: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    await run_outgoing(path, case, caplog)


@pytest.mark.parametrize(
    ("path", "case"), [(p, c) for _, p, c in CALLBACKS], ids=[i for i, _, _ in CALLBACKS]
)
async def test_callbacks(path: Path, case: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    await run_callback(path, case, caplog)


def test_every_connector_type_has_its_cases() -> None:
    from tidings.channels.connectors import connector_types

    with_cases = {folder.name for folder in connector_folders()}
    assert set(connector_types()) <= with_cases
