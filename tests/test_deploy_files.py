"""The deployment files in deploy/ (which cannot run here) name commands and settings that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tidings.cli.main import app
from tidings.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    return services


def _commands() -> list[list[str]]:
    commands = [list(service["command"]) for service in _compose().values() if "command" in service]  # type: ignore[call-overload]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                commands.append(shlex.split(line.partition("=")[2])[1:])  # past the executable
    return commands


@pytest.mark.parametrize("arguments", _commands(), ids=" ".join)
def test_every_command_is_one_the_cli_takes(arguments: list[str]) -> None:
    # --help after the arguments: the options are parsed (an unknown one fails), nothing runs.
    result = CliRunner().invoke(app, [*arguments, "--help"])
    assert result.exit_code == 0, result.output


def test_every_setting_named_exists() -> None:
    known = {f"TIDINGS_{name.upper()}" for name in Settings.model_fields}
    texts = [path.read_text() for path in DEPLOY.rglob("*") if path.is_file()]
    named = {name for text in texts for name in re.findall(r"\bTIDINGS_[A-Z_]+\b", text)}
    assert named and named <= known, named - known
