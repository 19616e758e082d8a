"""`tidings --help` lists every subcommand without importing the application behind them."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tidings.cli.main import SUBCOMMANDS


def test_help_lists_every_subcommand_without_importing_them() -> None:
    probe = (
        "import sys; from typer.testing import CliRunner; from tidings.cli.main import app; "
        "out = CliRunner().invoke(app, ['--help']).output; "
        "print(out); print('IMPORTED', sorted(m for m in sys.modules if m.startswith('tidings.')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    help_text, _, imported = output.rpartition("IMPORTED")
    for name in SUBCOMMANDS:
        assert f"  {name} " in help_text
    assert "tidings.runtime" not in imported and "tidings.cli.serve" not in imported


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_each_summary_is_its_commands_own(name: str) -> None:
    """The summaries are written twice (main.py lists them without importing); they must agree."""
    typer_app = importlib.import_module(SUBCOMMANDS[name].module).app
    if SUBCOMMANDS[name].group:
        own = typer_app.info.help
    else:
        (command,) = typer_app.registered_commands
        own = (command.callback.__doc__ or "").strip()
    assert own == SUBCOMMANDS[name].summary
