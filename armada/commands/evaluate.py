"""`armada eval`: score one run's student (or its aligner) on a split."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)


def evaluate(
    run: str = typer.Option(..., "--run", help="the run folder armada distill wrote (runs/NAME)"),
    split: Optional[str] = typer.Option(None, "--split", help="validation (default) or test (test sets are unlabeled: "
                                        "predictions only); generative runs: any split of the task"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where the task's files are (default: the run's data.data_dir)"),
    aligner: bool = typer.Option(False, "--aligner", help="score the TS Aligner alone on the cache's teacher features (paper Table 6)"),
    cache: Optional[str] = typer.Option(None, "--cache", help="with --aligner: the cache the run trained with, where it "
                                        "is not at the place the run recorded (it is checked to be the same cache)"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="a pipeline file, for runs of file:NAME tasks ([tasks.NAME])"),
    task: Optional[str] = typer.Option(None, "--task", help="generative runs: score zero-shot on this generation task "
                                       "(default: the run's own, on its validation split)"),
    limit: int = typer.Option(0, "--limit", min=0, help="generative runs: the first N rows only (0: all)"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="generative runs: the generation "
                                                 "budget (default: the task's own, as its source sets it)"),
) -> None:
    """Score a run's student (or its TS Aligner alone) on a split; its scores and predictions go into the run folder.

    A run trained with --objective lm is scored by generating (RougeL, or answer and log-likelihood accuracy).

    Example: armada eval --run runs/cola-euclid-s0 --split validation --data-dir ../shared/data/glue

    Example: armada eval --run runs/math-smollm2 --task reasoning/multiarith --data-dir ../shared/data/generative/reasoning --limit 100
    """
    from armada.eval.evaluate import score_run

    typer.echo(score_run(run, split=split, data_dir=data_dir, aligner=aligner, task=task, limit=limit,
                         max_new_tokens=max_new_tokens, file_tasks=_file_tasks(config), cache=cache))


def _file_tasks(config: str | None) -> dict:
    """The [tasks.NAME] tables of the pipeline file `config` (none without one)."""
    from armada.commands import load_pipeline

    return dict(load_pipeline(config).tasks) if config else {}
