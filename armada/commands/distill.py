"""`armada distill`: train a student against a teacher-feature cache; `armada students`: the student aliases."""

from __future__ import annotations

from typing import List, Optional

import typer

from armada.commands.options import given_settings, with_settings_of
from armada.config import DistillConfig


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)
    app.command("students")(students)


@with_settings_of(DistillConfig)
def distill(
    cache: Optional[str] = typer.Option(None, "--cache", help="the teacher-feature cache: a directory, packed file, http(s) or s3:// URL, or a Hugging Face dataset export as hf:DIR or hf:org/name[@revision]; the task comes from it"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="the task, for --undistilled without a cache (armada tasks)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="local task files (GLUE/SuperGLUE as published)"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="a pipeline file whose [distill] settings apply"),
    sets: List[str] = typer.Option([], "--set", help="section.key=value over the pipeline file, e.g. distill.alpha=0.3"),
    variant: Optional[str] = typer.Option(None, "--variant", help="apply the settings of a [[variants]] entry of the pipeline"),
    out: Optional[str] = typer.Option(None, "--out", help="the run directory (default runs/<task>-<student>-<kind>-seed<S>)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest complete checkpoint in --out"),
    train_limit: Optional[int] = typer.Option(None, "--train-limit", help="the first N training rows (default: as the cache)"),
    validation_limit: Optional[int] = typer.Option(None, "--validation-limit", help="the first N validation rows (default: as the cache)"),
    **settings,
) -> None:
    """Train a student with ARMADA against a teacher-feature cache (or the undistilled baseline).

    Every [distill] setting is an option too (--alpha, --manifold, ...), over the pipeline file and --set.

    Example: armada distill --cache cache/cola--sd14.zarr --student bert-6l --data-dir ../shared/data/glue --manifold euclid --out runs/cola-bert6l

    Example: armada distill --objective lm --cache cache/instruct_dolly--piper-whisper.zarr --student smollm2-135m --data-dir ../shared/data/generative/instruction --out runs/dolly-smollm2
    """
    from armada.commands import load_pipeline
    from armada.distill.request import train_requested

    given = given_settings(DistillConfig, settings)
    pipeline = load_pipeline(config, sets, {f"distill.{k}": v for k, v in given.items()})
    result = train_requested(pipeline, cache=cache, dataset=dataset, data_dir=data_dir, variant=variant, settings=given,
                             out=out, resume=resume, train_limit=train_limit, validation_limit=validation_limit)
    best = "undefined" if result.best_dev is None else f"{result.best_dev:.4f}"
    typer.echo(f"finished {result.out_dir}: best dev {result.metric} {best} at epoch {result.best_epoch} "
               f"({result.seconds:.0f} s)")


def students() -> None:
    """List the student aliases: name, source, kind, size. Any hub id or local folder works too.

    Example: armada students
    """
    from armada.distill.students import ALIASES, OFFLINE_ALIASES

    rows = [(a.name, a.kind, a.size, a.source + ("  [offline]" if a.name in OFFLINE_ALIASES else "")) for a in ALIASES.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    typer.echo("\nAny hub id (org/model) or folder saved with save_pretrained works as --student too; "
               "the meta-llama models are gated: accept their licence on the hub and log in first.")
