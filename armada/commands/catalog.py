"""`armada tasks`: what can be trained on."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks)


def tasks(config: str = typer.Option(None, "--config", "-c", help="a pipeline file whose [tasks.NAME] tables add file: tasks")) -> None:
    """List the tasks: name, kind, labels, metric.

    Example: armada tasks --config pipeline.toml
    """
    from armada.commands import load_pipeline
    from armada.tasks import TASKS, get_task

    cfg = load_pipeline(config)
    names = list(TASKS) + [f"file:{n}" for n in cfg.tasks]
    rows = []
    for name in names:
        task = get_task(name, cfg.tasks)
        labels = "regression" if task.kind == "regression" else "/".join(task.labels)
        rows.append((name, task.kind, labels, task.metric, task.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
