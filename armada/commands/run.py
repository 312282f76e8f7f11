"""`armada run`: extract, distil every variant × seed, evaluate and report, as a pipeline file says."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    pipeline: str = typer.Argument("pipeline.toml", help="the pipeline file"),
    sets: list[str] = typer.Option(None, "--set", help="override a pipeline setting: section.key=value"),
) -> None:
    """Run a whole pipeline: extract, distil every variant and seed, evaluate, report (run it again to resume).

    Example: armada run pipeline.toml --set run.seeds=[0]
    """
    from armada.commands import load_pipeline
    from armada.pipeline import run_pipeline

    cfg = load_pipeline(pipeline, sets or [])
    command = ["armada", "run", pipeline, *(f"--set={s}" for s in sets or [])]
    report = run_pipeline(cfg, say=lambda line: typer.echo(line), command=command)
    typer.echo(f"report: {report / 'results.md'}")
