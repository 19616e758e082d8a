"""The deployment files in deploy/ (which cannot run here) name commands and settings that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

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


def _parse(arguments: list[str]) -> dict[str, object]:
    """The command's parameters as the CLI would parse them, without running it: an unknown
    command or option, or a value its type refuses, raises."""
    command = typer.main.get_command(app)
    context = command.make_context("tidings", list(arguments))
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand named
        # click keeps a group's subcommand and its arguments apart from the rest.
        rest = [*getattr(context, "_protected_args", []), *context.args]
        name, command, rest = command.resolve_command(context, rest)
        assert command is not None and name is not None
        context = command.make_context(name, rest, parent=context)
    return dict(context.params)


def test_the_parser_refuses_what_it_should() -> None:
    assert _parse(["serve", "--role", "worker"])["role"] == "worker"
    for wrong in (["serve", "--role", "bogus"], ["serve", "--bogus"], ["db", "nope"]):
        with pytest.raises(Exception, match=r"(?i)invalid|no such|not one of"):
            _parse(wrong)


@pytest.mark.parametrize("arguments", _commands(), ids=" ".join)
def test_every_command_is_one_the_cli_takes(arguments: list[str]) -> None:
    _parse(arguments)


def test_every_setting_named_exists() -> None:
    known = {f"TIDINGS_{name.upper()}" for name in Settings.model_fields}
    texts = [path.read_text() for path in DEPLOY.rglob("*") if path.is_file()]
    named = {name for text in texts for name in re.findall(r"\bTIDINGS_[A-Z_]+\b", text)}
    assert named and named <= known, named - known
