"""Docs are a contract: every command has help text and is documented in the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from cohesion_mail.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    # Typer vendors its own click: duck-type groups and options rather than isinstance.
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        found.append((path, command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, f"{path} "))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_is_listed() -> None:
    names = {name for name, _ in COMMANDS}
    for expected in ("new", "build", "check", "preview", "send", "status", "serve", "report",
                     "subscribers", "subscribers import", "subscribers export"):
        assert expected in names


def test_every_command_has_help_and_is_in_the_readme() -> None:
    runner = CliRunner()
    for name, command in COMMANDS:
        assert (command.help or "").strip(), f"{name} has no help text"
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        leaf = name.split()[-1]
        if name.startswith("subscribers "):
            assert re.search(rf"\b{leaf}\b", README), f"README does not document {name}"
        else:
            assert f"cohesion-mail {name}" in README, f"README does not document {name}"


def test_every_option_is_in_the_readme() -> None:
    missing = []
    for name, command in COMMANDS:
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option":
                longest = max(param.opts, key=len)
                if longest in {"--help", "--config", "--state", "--version"}:
                    continue
                if longest not in README:
                    missing.append(f"{name} {longest}")
    assert not missing, f"options not in README: {missing}"


def test_quick_start_commands_exist() -> None:
    assert "pip install . && cohesion-mail build campaigns/2020-02-cohes3ion" in README
    assert "pip install -e '.[test]' && python -m pytest" in README
    assert (REPO / "campaigns" / "2020-02-cohes3ion" / "campaign.yaml").is_file()
    assert "python3 -m pip install -q -e '.[test]' && python3 -m pytest" in (
        REPO / ".ci" / "run"
    ).read_text()


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cohesion_mail", "--help"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("build", "send", "serve", "report", "check", "preview"):
        assert name in result.stdout
