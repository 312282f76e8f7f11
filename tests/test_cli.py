"""Every `armada` command says what it is for and shows a worked example; errors print without a traceback."""

import subprocess
import sys
from pathlib import Path

import click
import typer
from typer.testing import CliRunner

from armada.cli import app

ARMADA = Path(sys.executable).with_name("armada")


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def test_every_command_has_a_purpose_and_a_worked_example():
    group = typer.main.get_command(app)
    commands = list(_commands(group))
    assert {c[0] for c, _ in commands} >= {"run", "extract", "distill", "eval", "report", "cache", "tasks", "teachers",
                                            "students"}
    runner = CliRunner()
    for path, command in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        purpose = (command.help or "").strip().splitlines()[0]
        assert purpose.endswith(".") and len(purpose) > 15, (path, purpose)
        assert f"Example: armada {path[0]}" in " ".join(result.output.split()), (path, result.output)


def test_a_user_error_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    done = subprocess.run([str(ARMADA), "run", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'missing.toml'}: no such pipeline file"
    assert "Traceback" not in done.stdout + done.stderr
