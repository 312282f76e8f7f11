"""Every `armada` command says what it is for and shows a worked example; errors print without a traceback."""

import dataclasses
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


def test_every_distill_setting_is_an_option_its_field_describes():
    from armada.config import DistillConfig

    params = {p.name: p for p in typer.main.get_command(app).commands["distill"].params}
    for field in dataclasses.fields(DistillConfig):
        assert field.name in params, field.name
        assert params[field.name].help.startswith(field.metadata["doc"]), field.name


def test_distill_flags_reach_the_run_and_name_its_folder(tmp_path, monkeypatch):
    import tomli_w

    import distill_tiny as tiny
    from armada import config

    student = tiny.make_encoder(tmp_path / "student")
    name, tables = tiny.file_task(tmp_path / "data")
    spec = tables[name]
    (tmp_path / "pipeline.toml").write_text(tomli_w.dumps({"tasks": {name: {
        "train": spec.train, "validation": spec.validation, "labels": list(spec.labels), "id_field": "id"}}}))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [
        "distill", "--dataset", f"file:{name}", "--config", "pipeline.toml", "--undistilled", "--student", str(student),
        "--epochs", "1", "--batch-size", "4", "--max-length", "32", "--projection-dim", "16", "--aligner-hidden", "24",
        "--lr", "0.001", "--no-group-by-length"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / f"file-{name}-student-undistilled-seed0"     # no --out: named by what it is
    settings = config.load(run / "config.toml").distill
    assert (settings.undistilled, settings.epochs, settings.lr, settings.group_by_length) == (True, 1, 0.001, False)
